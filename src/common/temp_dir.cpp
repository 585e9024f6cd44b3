#include "common/temp_dir.h"

#include <cerrno>
#include <cstdlib>
#include <system_error>

namespace graft {

Result<TempDir> TempDir::create(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return errno_error(fmt::format("mkdtemp {}", pattern), errno);
  TempDir dir;
  dir.path_ = pattern;
  return dir;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace graft
