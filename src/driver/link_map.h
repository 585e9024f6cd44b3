// Which archive members a link took, as the linker itself reports them in
// its map file (-Wl,-Map=FILE): GNU ld and gold list them under "Archive
// member included ...", lld names them as the input of each section. Only
// the linker knows (the first member defining a symbol, --whole-archive,
// --start-group, --gc-sections): graft-cc never guesses. Pure functions of
// the text and the command line, no I/O.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "driver/command_line.h"

namespace graft::driver {

struct MapMember {
  std::string archive;  // as the linker opened it ("" when GNU ld names a thin archive's member by its own path)
  std::string member;   // the member's name, or for a thin archive its object's path
  bool operator==(const MapMember&) const = default;
};

// Every archive member the map lists, each once, in the map's order.
std::vector<MapMember> archive_members_in_map(std::string_view map);

// The map file the user asked the linker for (-Wl,-Map=FILE, -Wl,-Map,FILE,
// -Xlinker -Map=FILE, also --Map): graft-cc reads that one instead of adding
// its own, which would take its place.
std::optional<std::string> user_map_file(const CommandLine& cl);

// Whether the link may take objects from an archive the user named: an
// input that is not an object or a source (libfoo.a, a thin archive), or -l.
bool may_link_archives(const CommandLine& cl);

// The libraries named with -l (as "foo" for -lfoo, ":libfoo.a" for -l:libfoo.a)
// and the directories of -L, with the argument index of each -l.
struct LibraryOption {
  size_t arg = 0;
  std::string name;
};
std::vector<LibraryOption> library_options(const CommandLine& cl);
std::vector<std::string> library_directories(const CommandLine& cl);

// The file name -l<name> finds as a static archive: libfoo.a, or the name after ':'.
std::string archive_file_name(const std::string& library);

}  // namespace graft::driver
