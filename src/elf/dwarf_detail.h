// Small readers of DWARF attributes shared by the DWARF readers of src/elf.
#pragma once
#include <elfutils/libdw.h>

#include <cstdint>
#include <optional>

namespace graft::dwarf_detail {

const char* attr_string(Dwarf_Die* die, unsigned name);
std::optional<Dwarf_Word> attr_unsigned(Dwarf_Die* die, unsigned name);
bool attr_flag(Dwarf_Die* die, unsigned name);  // a flag attribute (DW_AT_declaration), whatever its form
bool type_of(Dwarf_Die* die, Dwarf_Die* out);  // the DIE's DW_AT_type

struct StaticLocation {
  uint64_t address = 0;  // link-time address (TLS: offset in the module's block)
  bool thread_local_storage = false;
};
std::optional<StaticLocation> static_location(Dwarf_Die* variable);

// A const object, or an array of const elements: data without state.
bool is_const(Dwarf_Die* type);

struct DwarfHandle {
  Dwarf* dwarf = nullptr;
  ~DwarfHandle() {
    if (dwarf) dwarf_end(dwarf);
  }
};

}  // namespace graft::dwarf_detail
