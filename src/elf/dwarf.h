// What graft reads from DWARF: where a translation unit's source lives,
// source lines, and inlining (types are in elf/types.h).
#pragma once
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "elf/elf_file.h"

namespace graft {

struct SourceInfo {
  std::filesystem::path path;  // absolute, normalised: DW_AT_comp_dir joined with DW_AT_name
};

// The source file of an object's (first) compile unit. Relocates the object's
// debug sections through libdwfl, as they need for ET_REL.
Result<SourceInfo> object_source(const std::filesystem::path& object);

// "file:line" of a link-time address in a binary (its line table), or "".
std::string source_line(const std::filesystem::path& binary, uint64_t address);

// For every function of a linked binary (by symbol name), the functions
// inlined into it, so that --explain can say a caller changed through one.
Result<std::map<std::string, std::set<std::string>>> read_inlined_calls(const ElfFile& binary);

}  // namespace graft
