#include "common/error.h"

#include <cstring>

namespace graft {

Error errno_error(const std::string& what, int err) { return Error{what + ": " + std::strerror(err)}; }

}  // namespace graft
