#include "graft/dwarf.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <libelf.h>

#include <memory>
#include <set>

namespace graft {
namespace fs = std::filesystem;
namespace {

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

bool type_of(Dwarf_Die* die, Dwarf_Die* out) {
  Dwarf_Attribute attr;
  return dwarf_attr_integrate(die, DW_AT_type, &attr) && dwarf_formref_die(&attr, out);
}

std::string type_signature(Dwarf_Die* die, int depth);

// The layout of an aggregate: size and every member's name, offset and type.
std::string members_signature(Dwarf_Die* die, int depth) {
  std::string sig = fmt::format("size={}{{", attr_unsigned(die, DW_AT_byte_size).value_or(0));
  Dwarf_Die child;
  if (dwarf_child(die, &child) == 0) {
    do {
      if (dwarf_tag(&child) != DW_TAG_member) continue;
      const char* name = dwarf_diename(&child);
      sig += fmt::format("{}@{}", name ? name : "<anon>", attr_unsigned(&child, DW_AT_data_member_location).value_or(0));
      if (auto bits = attr_unsigned(&child, DW_AT_bit_size)) {
        auto at = attr_unsigned(&child, DW_AT_data_bit_offset);
        if (!at) at = attr_unsigned(&child, DW_AT_bit_offset);
        sig += fmt::format(":{}bits@{}", *bits, at.value_or(0));
      }
      Dwarf_Die type;
      sig += "=" + (type_of(&child, &type) ? type_signature(&type, depth + 1) : std::string("?")) + ";";
    } while (dwarf_siblingof(&child, &child) == 0);
  }
  return sig + "}";
}

// A type as a member sees it: named aggregates by name (their own layout is
// compared on its own), anything else spelled out.
std::string type_signature(Dwarf_Die* die, int depth) {
  if (depth > 12) return "...";
  const char* name = dwarf_diename(die);
  Dwarf_Die inner;
  switch (dwarf_tag(die)) {
    case DW_TAG_base_type:
      return fmt::format("{}:{}", name ? name : "?", attr_unsigned(die, DW_AT_byte_size).value_or(0));
    case DW_TAG_structure_type:
    case DW_TAG_union_type:
    case DW_TAG_class_type: {
      const char* kind = dwarf_tag(die) == DW_TAG_union_type ? "union " : "struct ";
      if (name) return kind + std::string(name);
      return kind + members_signature(die, depth);
    }
    case DW_TAG_enumeration_type:
      return fmt::format("enum {}:{}", name ? name : "", attr_unsigned(die, DW_AT_byte_size).value_or(4));
    case DW_TAG_pointer_type:
      return "*" + (type_of(die, &inner) ? type_signature(&inner, depth + 1) : std::string("void"));
    case DW_TAG_typedef:
    case DW_TAG_const_type:
    case DW_TAG_volatile_type:
    case DW_TAG_atomic_type:
    case DW_TAG_restrict_type:
      return type_of(die, &inner) ? type_signature(&inner, depth + 1) : std::string("void");
    case DW_TAG_array_type: {
      std::string dims;
      Dwarf_Die child;
      if (dwarf_child(die, &child) == 0) {
        do {
          if (dwarf_tag(&child) != DW_TAG_subrange_type) continue;
          if (auto count = attr_unsigned(&child, DW_AT_count)) dims += fmt::format("[{}]", *count);
          else if (auto upper = attr_unsigned(&child, DW_AT_upper_bound)) dims += fmt::format("[{}]", *upper + 1);
          else dims += "[]";
        } while (dwarf_siblingof(&child, &child) == 0);
      }
      return (type_of(die, &inner) ? type_signature(&inner, depth + 1) : std::string("?")) + dims;
    }
    case DW_TAG_subroutine_type:
      return "fn";
    default:
      return name ? name : "?";
  }
}

// Whether a variable lives in static storage (not on a stack or in a register).
bool has_static_storage(Dwarf_Die* variable) {
  Dwarf_Attribute attr;
  if (!dwarf_attr_integrate(variable, DW_AT_location, &attr)) return false;
  Dwarf_Op* ops = nullptr;
  size_t count = 0;
  if (dwarf_getlocation(&attr, &ops, &count) != 0) return false;
  for (size_t i = 0; i < count; ++i)
    switch (ops[i].atom) {
      case DW_OP_addr:
      case DW_OP_addrx:
      case DW_OP_GNU_addr_index:
      case DW_OP_form_tls_address:
      case DW_OP_GNU_push_tls_address:
        return true;
      default:
        break;
    }
  return false;
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

struct DwarfHandle {
  Dwarf* dwarf = nullptr;
  ~DwarfHandle() {
    if (dwarf) dwarf_end(dwarf);
  }
};

void collect(Dwarf_Die* scope, const std::string& unit, Layouts& out, std::map<std::string, std::set<std::string>>& types,
             const std::string& prefix) {
  Dwarf_Die child;
  if (dwarf_child(scope, &child) != 0) return;
  do {
    const int tag = dwarf_tag(&child);
    const char* name = dwarf_diename(&child);
    if ((tag == DW_TAG_structure_type || tag == DW_TAG_union_type || tag == DW_TAG_class_type) && name &&
        !attr_unsigned(&child, DW_AT_declaration)) {
      types[std::string(tag == DW_TAG_union_type ? "union " : "struct ") + name].insert(members_signature(&child, 0));
    } else if (tag == DW_TAG_variable && name && has_static_storage(&child)) {
      Dwarf_Die type;
      Dwarf_Attribute attr;
      const bool external = dwarf_attr_integrate(&child, DW_AT_external, &attr) != nullptr;
      const std::string key = external ? std::string(name) : unit + "::" + prefix + name;
      const bool typed = type_of(&child, &type);
      out.variables[key] = typed ? type_signature(&type, 0) : "?";
      if (typed && is_const(&type)) out.constants.insert(key);
    } else if (tag == DW_TAG_subprogram && name) {
      collect(&child, unit, out, types, prefix + name + ".");
    } else if (tag == DW_TAG_lexical_block) {
      collect(&child, unit, out, types, prefix);
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

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
      Dwarf_Line* line = dwarf_getsrc_die(&cu, address);
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

Result<Layouts> read_layouts(const ElfFile& binary) {
  DwarfHandle handle;
  handle.dwarf = dwarf_begin_elf(static_cast<Elf*>(binary.elf_handle()), DWARF_C_READ, nullptr);
  if (!handle.dwarf) return make_error("{}: no DWARF debug information (build with graft-cc)", binary.path().string());
  Layouts out;
  std::map<std::string, std::set<std::string>> types;
  Dwarf_Off offset = 0, next = 0;
  size_t header_size = 0;
  while (dwarf_nextcu(handle.dwarf, offset, &next, &header_size, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu;
    if (dwarf_offdie(handle.dwarf, offset + header_size, &cu)) {
      const char* name = dwarf_diename(&cu);
      collect(&cu, name ? fs::path(name).filename().string() : "?", out, types, "");
    }
    offset = next;
  }
  for (auto& [name, signatures] : types) {
    std::string joined;
    for (const auto& s : signatures) joined += s + "|";
    out.types[name] = joined;
  }
  return out;
}

}  // namespace graft
