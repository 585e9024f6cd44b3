#include "elf/dwarf.h"

#include "elf/dwarf_detail.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <libelf.h>

#include <memory>
#include <set>

namespace graft {
namespace fs = std::filesystem;
namespace dwarf_detail {

const char* attr_string(Dwarf_Die* die, unsigned name) {
  Dwarf_Attribute attr;
  return dwarf_attr_integrate(die, name, &attr) ? dwarf_formstring(&attr) : nullptr;
}

std::optional<Dwarf_Word> attr_unsigned(Dwarf_Die* die, unsigned name) {
  Dwarf_Attribute attr;
  Dwarf_Word value;
  if (!dwarf_attr_integrate(die, name, &attr) || dwarf_formudata(&attr, &value) != 0) return std::nullopt;
  return value;
}

bool attr_flag(Dwarf_Die* die, unsigned name) {
  // DW_FORM_flag_present (DWARF 4 and later) carries no value: dwarf_formudata
  // refuses it, dwarf_formflag reads it as true.
  Dwarf_Attribute attr;
  bool value = false;
  return dwarf_attr_integrate(die, name, &attr) && dwarf_formflag(&attr, &value) == 0 && value;
}

bool type_of(Dwarf_Die* die, Dwarf_Die* out) {
  Dwarf_Attribute attr;
  return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, out);
}

// Where a variable lives, if in static storage (not on a stack or in a register).
std::optional<StaticLocation> static_location(Dwarf_Die* variable) {
  Dwarf_Attribute attr;
  if (!dwarf_attr_integrate(variable, DW_AT_location, &attr)) return std::nullopt;
  Dwarf_Op* ops = nullptr;
  size_t count = 0;
  if (dwarf_getlocation(&attr, &ops, &count) != 0) return std::nullopt;
  std::optional<StaticLocation> out;
  for (size_t i = 0; i < count; ++i)
    switch (ops[i].atom) {
      case DW_OP_addr:
        out = StaticLocation{ops[i].number, false};
        break;
      case DW_OP_const8u:
      case DW_OP_const4u:
        if (i + 1 < count) out = StaticLocation{ops[i].number, false};
        break;
      case DW_OP_addrx:
      case DW_OP_GNU_addr_index: {
        // DWARF 5: an index into .debug_addr, which libdw resolves.
        Dwarf_Attribute address_attr;
        Dwarf_Addr address = 0;
        if (dwarf_getlocation_attr(&attr, &ops[i], &address_attr) == 0) dwarf_formaddr(&address_attr, &address);
        out = StaticLocation{address, out && out->thread_local_storage};
        break;
      }
      case DW_OP_form_tls_address:
      case DW_OP_GNU_push_tls_address:
        if (!out) out = StaticLocation{0, true};
        out->thread_local_storage = true;
        break;
      default:
        break;
    }
  return out;
}

// A const object, or an array of const elements: data without state.
bool is_const(Dwarf_Die* type) {
  for (int depth = 0; depth < 16; ++depth) {
    const int tag = dwarf_tag(type);
    if (tag == DW_TAG_const_type) return true;
    if (tag != DW_TAG_typedef && tag != DW_TAG_array_type && tag != DW_TAG_volatile_type) return false;
    if (!type_of(type, type)) return false;
  }
  return false;
}

}  // namespace dwarf_detail

namespace {
using namespace dwarf_detail;

// The name a function's symbol has: its linkage name if it has one (C++), else its name.
const char* symbol_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  for (unsigned name : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name})
    if (dwarf_attr_integrate(die, name, &attr)) return dwarf_formstring(&attr);
  return dwarf_diename(die);
}

void collect_inlined(Dwarf_Die* scope, std::set<std::string>& out) {
  Dwarf_Die child;
  if (dwarf_child(scope, &child) != 0) return;
  do {
    const int tag = dwarf_tag(&child);
    if (tag == DW_TAG_inlined_subroutine) {
      Dwarf_Attribute attr;
      Dwarf_Die origin;
      if (dwarf_attr(&child, DW_AT_abstract_origin, &attr) && dwarf_formref_die(&attr, &origin))
        if (const char* name = symbol_name(&origin)) out.insert(name);
    }
    if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block) collect_inlined(&child, out);
  } while (dwarf_siblingof(&child, &child) == 0);
}

// The row of the unit's line table for `address`, or, where that row says
// line 0 (an instruction the compiler made, or merged from several lines),
// the nearest row before it in its sequence that names a line.
Dwarf_Line* line_before(Dwarf_Die* cu, uint64_t address) {
  Dwarf_Lines* lines = nullptr;
  size_t count = 0;
  if (dwarf_getsrclines(cu, &lines, &count) != 0) return nullptr;
  Dwarf_Line* found = nullptr;  // the last row at or before address with a line, in this sequence
  for (size_t i = 0; i < count; ++i) {
    Dwarf_Line* line = dwarf_onesrcline(lines, i);
    Dwarf_Addr at = 0;
    int number = 0;
    bool end = false;
    if (!line || dwarf_lineaddr(line, &at) != 0) continue;
    if (dwarf_lineendsequence(line, &end) == 0 && end) {
      if (at > address && found) return found;  // the sequence that holds address ends
      found = nullptr;
      continue;
    }
    if (at > address) continue;  // rows are sorted within a sequence, not across sequences
    if (dwarf_lineno(line, &number) == 0 && number != 0) found = line;
  }
  return found;
}

}  // namespace

Result<std::map<std::string, std::set<std::string>>> read_inlined_calls(const ElfFile& binary) {
  DwarfHandle handle;
  handle.dwarf = dwarf_begin_elf(static_cast<Elf*>(binary.elf_handle()), DWARF_C_READ, nullptr);
  if (!handle.dwarf) return make_error("{}: no DWARF debug information", binary.path().string());
  std::map<std::string, std::set<std::string>> out;
  Dwarf_Off offset = 0, next = 0;
  size_t header_size = 0;
  while (dwarf_nextcu(handle.dwarf, offset, &next, &header_size, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu, child;
    if (dwarf_offdie(handle.dwarf, offset + header_size, &cu) && dwarf_child(&cu, &child) == 0) {
      do {
        if (dwarf_tag(&child) != DW_TAG_subprogram || !dwarf_hasattr(&child, DW_AT_low_pc)) continue;
        const char* name = symbol_name(&child);
        if (!name) continue;
        std::set<std::string> inlined;
        collect_inlined(&child, inlined);
        if (!inlined.empty()) out[name].insert(inlined.begin(), inlined.end());
      } while (dwarf_siblingof(&child, &child) == 0);
    }
    offset = next;
  }
  return out;
}

std::string source_line(const fs::path& binary, uint64_t address) {
  auto elf = ElfFile::open(binary);
  if (!elf) return {};
  DwarfHandle handle;
  handle.dwarf = dwarf_begin_elf(static_cast<Elf*>(elf.value()->elf_handle()), DWARF_C_READ, nullptr);
  if (!handle.dwarf) return {};
  // clang writes no .debug_aranges: find the unit by its ranges.
  Dwarf_Off offset = 0, next = 0;
  size_t header_size = 0;
  while (dwarf_nextcu(handle.dwarf, offset, &next, &header_size, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu;
    if (dwarf_offdie(handle.dwarf, offset + header_size, &cu) && dwarf_haspc(&cu, address) > 0) {
      Dwarf_Line* line = line_before(&cu, address);
      int number = 0;
      const char* file = line ? dwarf_linesrc(line, nullptr, nullptr) : nullptr;
      if (file && dwarf_lineno(line, &number) == 0) return fmt::format("{}:{}", fs::path(file).filename().string(), number);
      return {};
    }
    offset = next;
  }
  return {};
}

Result<SourceInfo> object_source(const fs::path& object) {
  static const Dwfl_Callbacks callbacks = {dwfl_build_id_find_elf, dwfl_standard_find_debuginfo,
                                           dwfl_offline_section_address, nullptr};
  std::unique_ptr<Dwfl, decltype(&dwfl_end)> dwfl(dwfl_begin(&callbacks), dwfl_end);
  if (!dwfl) return make_error("{}: libdwfl: {}", object.string(), dwfl_errmsg(-1));
  Dwfl_Module* module = dwfl_report_offline(dwfl.get(), "object", object.c_str(), -1);
  if (!module) return make_error("{}: {}", object.string(), dwfl_errmsg(-1));
  dwfl_report_end(dwfl.get(), nullptr, nullptr);
  Dwarf_Addr bias = 0;
  Dwarf_Die* cu = dwfl_module_nextcu(module, nullptr, &bias);
  if (!cu) return make_error("{}: no DWARF compile unit (compile with graft-cc, which adds -g)", object.string());
  const char* name = dwarf_diename(cu);
  const char* dir = attr_string(cu, DW_AT_comp_dir);
  if (!name) return make_error("{}: compile unit has no name", object.string());
  fs::path path = name;
  if (path.is_relative() && dir) path = fs::path(dir) / path;
  return SourceInfo{path.lexically_normal()};
}

}  // namespace graft
