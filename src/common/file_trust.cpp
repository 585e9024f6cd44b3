#include "common/file_trust.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace graft {
namespace fs = std::filesystem;

namespace {

std::string with_hint(const std::string& hint) { return hint.empty() ? std::string() : " " + hint; }

// One path: owned by root or by us, writable by no one else unless it is a
// directory above the leaf with the sticky bit.
Status check_one(const fs::path& at, const fs::path& leaf, const std::string& what, const std::string& hint) {
  struct stat st {};
  if (::stat(at.c_str(), &st) != 0) return errno_error(fmt::format("{} {}", what, at.string()), errno);
  const bool is_leaf = at == leaf;
  const std::string where = is_leaf ? fmt::format("{} {}", what, at.string())
                                    : fmt::format("{} {}: the directory above it, {},", what, leaf.string(), at.string());
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return make_error("{} is owned by uid {}, not by root or by you (uid {}): refused, as ssh refuses a loose "
                      "authorized_keys; chown it{}",
                      where, st.st_uid, ::geteuid(), with_hint(hint));
  const bool others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  const bool sticky_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
  if (others_write && (is_leaf || !sticky_dir))
    return make_error("{} is writable by {} (mode {:04o}): refused, as ssh refuses a loose authorized_keys; "
                      "chmod go-w {}{}",
                      where, (st.st_mode & S_IWOTH) ? "anyone" : "its group", st.st_mode & 07777, at.string(),
                      with_hint(hint));
  return ok();
}

}  // namespace

Status check_trusted_path(const fs::path& path, const std::string& what, const std::string& hint) {
  std::error_code ec;
  // Symbolic links are followed: what is checked is what will be read.
  const fs::path real = fs::canonical(path, ec);
  if (ec) return make_error("{} {}: {}", what, path.string(), ec.message());
  for (fs::path at = real;; at = at.parent_path()) {
    GRAFT_TRY(check_one(at, real, what, hint));
    if (at == at.root_path() || at.parent_path() == at) break;
  }
  return ok();
}

}  // namespace graft
