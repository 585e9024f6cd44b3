// A private temporary directory, removed with everything in it when its
// owner goes out of scope.
#pragma once
#include <filesystem>
#include <string>

#include "common/error.h"

namespace graft {

class TempDir {
 public:
  // Under $TMPDIR (else /tmp), named <prefix>.XXXXXX.
  static Result<TempDir> create(const std::string& prefix);
  TempDir() = default;
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace graft
