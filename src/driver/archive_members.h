// The objects a link took from the static archives the user named (libfoo.a
// as an input, or -lfoo), found from the linker's map, taken out of the
// archive as they were at link time (the archive may be rebuilt later), and
// sorted into those graft-cc compiled (recorded and diffed like any object)
// and those it did not (reported, and recorded by digest only so that graft
// diff refuses a change to them instead of missing it).
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "driver/command_line.h"

namespace graft::driver {

struct LinkedMember {
  std::filesystem::path archive;  // as the linker opened it
  std::string name;               // the member's name in the archive
  size_t arg = 0;                 // where the archive is on the command line (its input, or its -l)
  std::filesystem::path object;   // the member's object file, as linked
  bool compiled_by_graft = false;
  std::string label() const;      // "libfoo.a(a.o)": the same in two builds of one project
};

// The members of the user's archives the map lists, in link order within
// each archive; regular archives' members are written under `extract_dir`.
Result<std::vector<LinkedMember>> linked_archive_members(const CommandLine& cl, std::string_view map,
                                                         const std::filesystem::path& extract_dir);

// Whether an object was compiled by graft-cc: DWARF, and a patchable entry
// for its functions (or nothing in it at all: a unit that compiles to nothing).
bool compiled_by_graft_cc(const std::filesystem::path& object);

// One line per archive whose linked members graft-cc did not compile (none when it compiled them all).
std::vector<std::string> foreign_member_warnings(const std::vector<LinkedMember>& members, const std::string& output);

}  // namespace graft::driver
