// Static archives (ar(1) format, GNU/System V variant that Debian's binutils
// write): the members a link may take objects from. Thin archives
// (ar rcsT) hold no bytes of their own: each member names its object file.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"

namespace graft {

struct ArchiveMember {
  std::string name;             // as stored; for a thin archive, the object's path relative to the archive
  std::filesystem::path file;   // thin archive: the object file the member names ("" otherwise)
  std::string bytes;            // regular archive: the member's contents
};

struct Archive {
  std::filesystem::path path;
  bool thin = false;
  std::vector<ArchiveMember> members;  // in archive order, without the symbol and name tables
};

// Whether `path` starts like an archive ("!<arch>\n" or "!<thin>\n").
bool is_archive(const std::filesystem::path& path);

// The members of an archive; a one-line error naming the archive if it is
// not one, or is cut short.
Result<Archive> read_archive(const std::filesystem::path& path);

}  // namespace graft
