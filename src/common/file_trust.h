// Whether a file or directory graft is about to trust (a build record, a
// trusted key, the apply policy) can only have been written by someone
// trusted, as ssh checks authorized_keys: it and every directory above it
// belong to root or to the user running graft, and none is writable by
// group or others, except a directory with the sticky bit (/tmp), where
// others may add entries but not replace ours.
#pragma once
#include <filesystem>
#include <string>

#include "common/error.h"

namespace graft {

// `what` names the path in the message ("graft store", "trusted key");
// `hint` says what else the user may do ("or set GRAFT_STORE to a private
// directory"). The path must exist.
Status check_trusted_path(const std::filesystem::path& path, const std::string& what, const std::string& hint = {});

}  // namespace graft
