// The type table of a binary, read from its DWARF.
#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <libelf.h>

#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>

#include "elf/dwarf_detail.h"
#include "elf/types.h"

namespace graft {
namespace {

using namespace dwarf_detail;

// DW_AT_data_member_location: a constant, or (DWARF 2, gcc -gdwarf-2) an
// expression `DW_OP_plus_uconst N`.
uint64_t member_offset(Dwarf_Die* member) {
  if (auto constant = attr_unsigned(member, DW_AT_data_member_location)) return *constant;
  Dwarf_Attribute attr;
  Dwarf_Op* ops = nullptr;
  size_t count = 0;
  if (dwarf_attr_integrate(member, DW_AT_data_member_location, &attr) && dwarf_getlocation(&attr, &ops, &count) == 0 &&
      count == 1 && ops[0].atom == DW_OP_plus_uconst)
    return ops[0].number;
  return 0;
}

class TypeReader {
 public:
  explicit TypeReader(TypeTable& table, const ElfFile& binary) : table_(table) {
    for (const auto& symbol : binary.symbols())
      if (symbol.bind == STB_LOCAL && symbol.type == STT_OBJECT) local_objects_.emplace(symbol.value, symbol.name);
  }

  // The index of the type a DIE denotes, typedefs and qualifiers resolved.
  int read(Dwarf_Die* die, int depth = 0) {
    if (depth > 64) return unknown();
    Dwarf_Die inner;
    switch (dwarf_tag(die)) {
      case DW_TAG_typedef:
        // typedef struct { ... } THREAD;: the struct has no name but this one.
        if (type_of(die, &inner) && dwarf_diename(&inner) == nullptr && is_aggregate(&inner) &&
            !by_offset_.count(dwarf_dieoffset(&inner)))
          return aggregate(&inner, nullptr, depth + 1, dwarf_diename(die));
        return type_of(die, &inner) ? read(&inner, depth + 1) : void_type();
      case DW_TAG_const_type:
      case DW_TAG_volatile_type:
      case DW_TAG_atomic_type:
      case DW_TAG_restrict_type:
        return type_of(die, &inner) ? read(&inner, depth + 1) : void_type();
      default:
        break;
    }
    const Dwarf_Off offset = dwarf_dieoffset(die);
    if (auto it = by_offset_.find(offset); it != by_offset_.end()) return it->second;
    const int index = build(die, depth);
    by_offset_[offset] = index;
    return index;
  }

  void frame(uint64_t address, std::vector<FrameLocal> locals, int parameters) {
    table_.frames.push_back({address, std::move(locals), parameters});
  }

  void variable(Dwarf_Die* die, const std::string& unit, const std::string& prefix) {
    const char* name = dwarf_diename(die);
    auto location = static_location(die);
    if (!name || !location) return;
    Dwarf_Attribute attr;
    const bool external = dwarf_attr_integrate(die, DW_AT_external, &attr) != nullptr;
    Variable v;
    v.key = external ? std::string(name) : unit + "::" + static_name(prefix + name, location->address);
    v.address = location->address;
    v.thread_local_storage = location->thread_local_storage;
    Dwarf_Die type;
    if (type_of(die, &type)) {
      Dwarf_Die walked = type;  // is_const walks its argument
      v.constant = is_const(&walked);
      v.type = read(&type);
    }
    table_.variables.push_back(std::move(v));
  }

 private:
  // A function's static is `function.name` in DWARF's terms, but two of one
  // name in two blocks of the function are two symbols, `function.name` and
  // `function.name.1` (clang numbers them in source order): the symbol at
  // the variable's address is its name, the same in two builds of the source.
  std::string static_name(const std::string& dotted, uint64_t address) const {
    if (dotted.find('.') == std::string::npos) return dotted;  // at file scope
    auto [first, last] = local_objects_.equal_range(address);
    for (auto it = first; it != last; ++it)
      if (it->second == dotted || it->second.starts_with(dotted + ".")) return it->second;
    return dotted;
  }

  int add(Type t) {
    table_.types.push_back(std::move(t));
    return static_cast<int>(table_.types.size()) - 1;
  }
  int void_type() {
    if (void_ < 0) void_ = add({TypeKind::Void, "void", 0, -1, 0, false, {}, {}});
    return void_;
  }
  int unknown() { return add({TypeKind::Unknown, "?", 0, -1, 0, false, {}, {}}); }

  int build(Dwarf_Die* die, int depth) {
    const char* name = dwarf_diename(die);
    const uint64_t size = attr_unsigned(die, DW_AT_byte_size).value_or(0);
    Dwarf_Die inner;
    switch (dwarf_tag(die)) {
      case DW_TAG_base_type: {
        TypeKind kind = TypeKind::Unknown;
        switch (attr_unsigned(die, DW_AT_encoding).value_or(0)) {
          case DW_ATE_signed:
          case DW_ATE_signed_char:
            kind = TypeKind::Signed;
            break;
          case DW_ATE_unsigned:
          case DW_ATE_unsigned_char:
          case DW_ATE_UTF:
            kind = TypeKind::Unsigned;
            break;
          case DW_ATE_float:
            kind = TypeKind::Float;
            break;
          case DW_ATE_boolean:
            kind = TypeKind::Bool;
            break;
          default:
            break;
        }
        return add({kind, name ? name : "?", size, -1, 0, false, {}, {}});
      }
      case DW_TAG_enumeration_type: {
        Type t{TypeKind::Enum, name ? std::string("enum ") + name : "", size ? size : 4, -1, 0, false, {}, {}};
        Dwarf_Die child;
        if (dwarf_child(die, &child) == 0) {
          do {
            if (dwarf_tag(&child) != DW_TAG_enumerator) continue;
            Dwarf_Attribute attr;
            Dwarf_Sword value = 0;
            if (dwarf_attr(&child, DW_AT_const_value, &attr)) dwarf_formsdata(&attr, &value);
            t.enumerators.emplace_back(dwarf_diename(&child) ? dwarf_diename(&child) : "", value);
          } while (dwarf_siblingof(&child, &child) == 0);
        }
        if (type_of(die, &inner)) {
          const int underlying = read(&inner, depth + 1);
          t.target = underlying;
        }
        return add(std::move(t));
      }
      case DW_TAG_pointer_type:
      case DW_TAG_reference_type:
      case DW_TAG_rvalue_reference_type: {
        const int index = add({TypeKind::Pointer, "", size ? size : 8, -1, 0, false, {}, {}});
        by_offset_[dwarf_dieoffset(die)] = index;  // a struct may point to itself
        if (type_of(die, &inner)) {
          const int target = read(&inner, depth + 1);
          table_.types[index].target = table_.types[target].kind == TypeKind::Void ? -1 : target;
        }
        return index;
      }
      case DW_TAG_array_type: {
        std::vector<uint64_t> dims;
        Dwarf_Die child;
        if (dwarf_child(die, &child) == 0) {
          do {
            if (dwarf_tag(&child) != DW_TAG_subrange_type) continue;
            if (auto count = attr_unsigned(&child, DW_AT_count)) dims.push_back(*count);
            else if (auto upper = attr_unsigned(&child, DW_AT_upper_bound)) dims.push_back(*upper + 1);
            else dims.push_back(0);
          } while (dwarf_siblingof(&child, &child) == 0);
        }
        if (dims.empty()) dims.push_back(0);
        int element = type_of(die, &inner) ? read(&inner, depth + 1) : unknown();
        // int a[2][3] is an array of 2 arrays of 3.
        for (auto d = dims.rbegin(); d != dims.rend(); ++d)
          element = add({TypeKind::Array, "", *d * table_.types[element].size, element, *d, false, {}, {}});
        return element;
      }
      case DW_TAG_structure_type:
      case DW_TAG_class_type:
      case DW_TAG_union_type:
        return aggregate(die, name, depth);
      case DW_TAG_subroutine_type:
        return add({TypeKind::Function, "", 0, -1, 0, false, {}, {}});
      case DW_TAG_unspecified_type:
        return void_type();
      default:
        return add({TypeKind::Unknown, name ? name : "?", size, -1, 0, false, {}, {}});
    }
  }

  static bool is_aggregate(Dwarf_Die* die) {
    const int tag = dwarf_tag(die);
    return tag == DW_TAG_structure_type || tag == DW_TAG_class_type || tag == DW_TAG_union_type;
  }

  // An anonymous aggregate that a typedef names is known by the typedef's
  // name ("THREAD", without "struct ": that is how C code spells it).
  int aggregate(Dwarf_Die* die, const char* name, int depth, const char* typedef_name = nullptr) {
    const bool is_union = dwarf_tag(die) == DW_TAG_union_type;
    const TypeKind kind = is_union ? TypeKind::Union : TypeKind::Struct;
    const std::string full = name             ? std::string(is_union ? "union " : "struct ") + name
                             : typedef_name ? std::string(typedef_name)
                                            : "";
    const bool declaration = attr_flag(die, DW_AT_declaration);
    // Named aggregates are one type per name: a declaration in one unit is the
    // definition from another (opaque pointers are common in C).
    if (!full.empty()) {
      if (auto it = table_.named.find(full); it != table_.named.end()) {
        // Another definition with other members is another struct of the same name.
        if (!declaration && !table_.types[it->second].incomplete && shape(die) != shapes_[it->second])
          return variant(die, full, kind, depth);
        Type& known = table_.types[it->second];
        // A unit that only declares it uses it too (it may pass or keep
        // pointers to one): defined_in counts every unit that names it.
        defined_here(it->second, die);
        if (declaration || !known.incomplete) {
          if (!declaration && !known.incomplete) check_same(it->second, die, depth);
          return it->second;
        }
        // A definition for a name seen only declared so far: fill it in place.
        by_offset_[dwarf_dieoffset(die)] = it->second;
        fill(it->second, die, depth);
        return it->second;
      }
    }
    const int index = add({kind, full, 0, -1, 0, declaration, {}, {}});
    by_offset_[dwarf_dieoffset(die)] = index;
    if (!full.empty()) table_.named[full] = index;
    defined_here(index, die);
    if (!declaration) fill(index, die, depth);
    return index;
  }

 public:
  // The unit being read, for defined_in.
  void enter_unit(const std::string& unit) {
    unit_ = unit;
    table_.units.insert(unit);
  }
  void function_named(const char* name) { table_.unit_functions[unit_].insert(name); }

 private:
  // A definition of aggregate `index` in the unit being read (and whether in a system header).
  void defined_here(int index, Dwarf_Die* die) {
    table_.defined_in[index].insert(unit_);
    const char* file = dwarf_decl_file(die);
    // No file and a reserved name: the compiler's own (__va_list_tag), never the program's data.
    const char* name = dwarf_diename(die);
    const bool compiler_own = !file && name && std::string_view(name).starts_with("__");
    if (compiler_own || (file && std::string_view(file).starts_with("/usr/"))) table_.system_types.insert(index);
  }

  // A definition's members as names, offsets and size: what tells two structs of one name apart.
  static std::string shape(Dwarf_Die* die) {
    std::string out = std::to_string(attr_unsigned(die, DW_AT_byte_size).value_or(0));
    Dwarf_Die child;
    if (dwarf_child(die, &child) != 0) return out;
    do {
      if (dwarf_tag(&child) != DW_TAG_member) continue;
      const char* name = dwarf_diename(&child);
      out += fmt::format(" {}@{}", name ? name : "", member_offset(&child));
    } while (dwarf_siblingof(&child, &child) == 0);
    return out;
  }
  // The struct of name `full` this definition is, when its members are not
  // those of the first one met: one of the variants already met, or a new one
  // named after this unit.
  int variant(Dwarf_Die* die, const std::string& full, TypeKind kind, int depth) {
    const std::string own = shape(die);
    auto& known = variants_[full];
    int index = -1;
    for (int v : known)
      if (shapes_[v] == own) index = v;
    if (index < 0) {
      const std::string unit = std::filesystem::path(unit_).filename().string();
      std::string name = fmt::format("{}@{}", full, unit);
      for (int n = 2; table_.named.count(name); ++n) name = fmt::format("{}@{}:{}", full, unit, n);
      index = add({kind, name, 0, -1, 0, false, {}, {}});
      table_.named[name] = index;
      known.push_back(index);
      by_offset_[dwarf_dieoffset(die)] = index;
      defined_here(index, die);
      fill(index, die, depth);
    } else {
      by_offset_[dwarf_dieoffset(die)] = index;
      defined_here(index, die);
    }
    table_.variants[unit_][full] = table_.types[index].name;
    return index;
  }

  void fill(int index, Dwarf_Die* die, int depth) {
    shapes_[index] = shape(die);
    table_.types[index].incomplete = false;
    table_.types[index].size = attr_unsigned(die, DW_AT_byte_size).value_or(0);
    table_.types[index].members = members(die, depth);
  }

  std::vector<Member> members(Dwarf_Die* die, int depth) {
    std::vector<Member> out;
    Dwarf_Die child;
    if (dwarf_child(die, &child) != 0) return out;
    do {
      if (dwarf_tag(&child) != DW_TAG_member) continue;
      Member m;
      const char* name = dwarf_diename(&child);
      m.name = name ? name : "";
      m.offset = member_offset(&child);
      if (auto bits = attr_unsigned(&child, DW_AT_bit_size)) {
        // clang (and DWARF 4+ gcc) say DW_AT_data_bit_offset from the start
        // of the struct; older gcc says DW_AT_bit_offset, counted from the
        // most significant bit of a storage unit of DW_AT_byte_size bytes.
        m.bit_size = static_cast<uint32_t>(*bits);
        uint64_t absolute = 0;
        if (auto data_bit = attr_unsigned(&child, DW_AT_data_bit_offset)) {
          absolute = *data_bit;
        } else {
          const uint64_t unit = attr_unsigned(&child, DW_AT_byte_size).value_or(4);
          absolute = m.offset * 8 + unit * 8 - attr_unsigned(&child, DW_AT_bit_offset).value_or(0) - *bits;
        }
        m.offset = absolute / 8;
        m.bit_offset = static_cast<uint32_t>(absolute % 8);
      }
      Dwarf_Die type;
      m.type = type_of(&child, &type) ? read(&type, depth + 1) : unknown();
      out.push_back(std::move(m));
    } while (dwarf_siblingof(&child, &child) == 0);
    return out;
  }

  // Two units may define one name differently (a private struct in each .c).
  // Compared once everything is read: a pointer type met while it is being
  // read does not know its target yet.
  void check_same(int index, Dwarf_Die* die, int depth) {
    const Dwarf_Off offset = dwarf_dieoffset(die);
    if (!checked_.insert(offset).second) return;
    pending_.push_back({index, attr_unsigned(die, DW_AT_byte_size).value_or(0), members(die, depth)});
  }

 public:
  void finish() {
    std::set<std::string> ambiguous;
    for (const auto& p : pending_) {
      const Type& known = table_.types[p.index];
      bool same = p.size == known.size && p.members.size() == known.members.size();
      for (size_t i = 0; same && i < p.members.size(); ++i) {
        const Member& x = p.members[i];
        const Member& y = known.members[i];
        same = x.name == y.name && x.offset == y.offset && x.bit_size == y.bit_size && x.bit_offset == y.bit_offset &&
               table_.layout(x.type) == table_.layout(y.type);
      }
      if (!same) ambiguous.insert(known.name);
    }
    table_.ambiguous.assign(ambiguous.begin(), ambiguous.end());
  }

 private:
  struct Pending {
    int index;
    uint64_t size;
    std::vector<Member> members;
  };
  std::vector<Pending> pending_;
  TypeTable& table_;
  std::unordered_map<Dwarf_Off, int> by_offset_;
  std::map<int, std::string> shapes_;                   // shape() of each aggregate defined
  std::map<std::string, std::vector<int>> variants_;    // "struct dict" -> its variants (not the first)
  std::set<Dwarf_Off> checked_;
  std::string unit_;
  std::multimap<uint64_t, std::string> local_objects_;  // the binary's static objects by address
  int void_ = -1;
};

// The pc ranges of a scope (a function, a block, an inlined call).
std::vector<std::pair<uint64_t, uint64_t>> scope_ranges(Dwarf_Die* scope) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  Dwarf_Addr base = 0, start = 0, end = 0;
  for (ptrdiff_t at = 0; (at = dwarf_ranges(scope, at, &base, &start, &end)) > 0;) out.emplace_back(start, end);
  return out;
}

// One DWARF location expression as a LocalPlace. `frame_base` is the
// function's DW_AT_frame_base in the same terms, its address being the base
// (a register's value, or the CFA); nullptr: no usable frame base.
LocalPlace decode_place(const Dwarf_Op* ops, size_t count, const LocalPlace* frame_base) {
  using Kind = LocalPlace::Kind;
  constexpr uint64_t kGeneralRegisters = 16;  // rax..r15; the return address column is no register
  if (count != 1) return {};
  const Dwarf_Op& op = ops[0];
  const uint8_t atom = op.atom;
  if (atom >= DW_OP_reg0 && atom <= DW_OP_reg15) return {Kind::InRegister, atom - DW_OP_reg0, 0};
  if (atom == DW_OP_regx && op.number < kGeneralRegisters) return {Kind::InRegister, static_cast<int>(op.number), 0};
  if (atom >= DW_OP_breg0 && atom <= DW_OP_breg15)
    return {Kind::AtRegisterOffset, atom - DW_OP_breg0, static_cast<int64_t>(op.number)};
  if (atom == DW_OP_bregx && op.number < kGeneralRegisters)
    return {Kind::AtRegisterOffset, static_cast<int>(op.number), static_cast<int64_t>(op.number2)};
  if (atom == DW_OP_fbreg && frame_base && frame_base->known())
    return {frame_base->kind, frame_base->reg, frame_base->offset + static_cast<int64_t>(op.number)};
  return {};
}

// DW_AT_frame_base as the address fbreg offsets are added to: a register's
// value (DW_OP_regN, as clang says), a register plus an offset, or the CFA
// (DW_OP_call_frame_cfa, as gcc says).
LocalPlace frame_base_of(Dwarf_Die* function) {
  using Kind = LocalPlace::Kind;
  Dwarf_Attribute attr;
  Dwarf_Op* ops = nullptr;
  size_t count = 0;
  if (!dwarf_attr_integrate(function, DW_AT_frame_base, &attr) || dwarf_getlocation(&attr, &ops, &count) != 0 ||
      count != 1)
    return {};
  if (ops[0].atom == DW_OP_call_frame_cfa) return {Kind::AtCfaOffset, -1, 0};
  LocalPlace place = decode_place(ops, count, nullptr);
  // A register location's base is the register's value; a memory location's (bregN) is its address.
  if (place.kind == Kind::InRegister) return {Kind::AtRegisterOffset, place.reg, 0};
  return place;
}

// Every parameter and local of a function, inlined callees' too, with the pcs
// where it has a location (a location list's ranges, else its whole scope)
// and what that location is.
void collect_locals(TypeReader& reader, Dwarf_Die* scope, const LocalPlace& frame_base, std::vector<FrameLocal>& out) {
  Dwarf_Die child;
  if (dwarf_child(scope, &child) != 0) return;
  do {
    const int tag = dwarf_tag(&child);
    Dwarf_Die type;
    if ((tag == DW_TAG_formal_parameter || tag == DW_TAG_variable) && !static_location(&child)) {
      Dwarf_Attribute attr;
      Dwarf_Die origin;
      Dwarf_Die* die = &child;
      if (dwarf_attr(&child, DW_AT_abstract_origin, &attr) && dwarf_formref_die(&attr, &origin)) die = &origin;
      if (!type_of(die, &type)) continue;
      const char* name = dwarf_diename(die);
      FrameLocal local{name ? name : "?", reader.read(&type), {}, {}};
      Dwarf_Attribute location;
      if (!dwarf_attr(&child, DW_AT_location, &location)) continue;  // optimised out: never live
      Dwarf_Addr base = 0, start = 0, end = 0;
      Dwarf_Op* expr = nullptr;
      size_t length = 0;
      for (ptrdiff_t at = 0; (at = dwarf_getlocations(&location, at, &base, &start, &end, &expr, &length)) > 0;) {
        if (end == static_cast<Dwarf_Addr>(-1)) {  // one expression: live in its whole scope
          // A stack slot named for the whole scope holds garbage until the
          // local is first stored (or, in the prologue, is not even its own):
          // graft cannot tell when, so its place counts as unknown. A
          // location list's entries start where the value does.
          LocalPlace place = decode_place(expr, length, &frame_base);
          if (place.kind != LocalPlace::Kind::InRegister) {
            local.scope_slot = place;
            place = {};
          }
          local.live.clear();
          for (const auto& [from, to] : scope_ranges(scope)) local.live.push_back({from, to, place});
          break;
        }
        // DW_OP_entry_value: what a register held at the function's entry,
        // which this frame no longer has (a debugger recomputes it in the
        // caller's): like an entry without a location, the frame holds nothing.
        const bool only_at_entry =
            length && (expr[0].atom == DW_OP_entry_value || expr[0].atom == DW_OP_GNU_entry_value);
        if (length && !only_at_entry) local.live.push_back({start, end, decode_place(expr, length, &frame_base)});
      }
      out.push_back(std::move(local));
    } else if (tag == DW_TAG_lexical_block || tag == DW_TAG_inlined_subroutine) {
      collect_locals(reader, &child, frame_base, out);
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

// A function's own parameters, as DWARF lists them (a variadic `...` counts).
int count_parameters(Dwarf_Die* function) {
  Dwarf_Die child;
  int count = 0;
  if (dwarf_child(function, &child) != 0) return 0;
  do {
    const int tag = dwarf_tag(&child);
    count += tag == DW_TAG_formal_parameter || tag == DW_TAG_unspecified_parameters;
  } while (dwarf_siblingof(&child, &child) == 0);
  return count;
}

void collect(TypeReader& reader, Dwarf_Die* scope, const std::string& unit, const std::string& prefix) {
  Dwarf_Die child;
  if (dwarf_child(scope, &child) != 0) return;
  do {
    const int tag = dwarf_tag(&child);
    const char* name = dwarf_diename(&child);
    if (tag == DW_TAG_variable) {
      reader.variable(&child, unit, prefix);
    } else if ((tag == DW_TAG_structure_type || tag == DW_TAG_union_type || tag == DW_TAG_class_type) && name) {
      reader.read(&child);  // every named aggregate, used by a global or not (heap-only types)
    } else if (tag == DW_TAG_subprogram && name) {
      reader.function_named(name);
      Dwarf_Addr low = 0;
      if (dwarf_lowpc(&child, &low) == 0) {
        std::vector<FrameLocal> locals;
        collect_locals(reader, &child, frame_base_of(&child), locals);
        reader.frame(low, std::move(locals), count_parameters(&child));
      }
      collect(reader, &child, unit, prefix + name + ".");
    } else if (tag == DW_TAG_lexical_block) {
      collect(reader, &child, unit, prefix);
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

}  // namespace

const char* type_kind_name(TypeKind kind) {
  switch (kind) {
    case TypeKind::Void: return "void";
    case TypeKind::Signed: return "signed integer";
    case TypeKind::Unsigned: return "unsigned integer";
    case TypeKind::Float: return "floating point";
    case TypeKind::Bool: return "bool";
    case TypeKind::Enum: return "enum";
    case TypeKind::Pointer: return "pointer";
    case TypeKind::Struct: return "struct";
    case TypeKind::Union: return "union";
    case TypeKind::Array: return "array";
    case TypeKind::Function: return "function";
    case TypeKind::Unknown: break;
  }
  return "unknown";
}

std::string source_name(const std::string& name) {
  const size_t unit = name.find('@');
  return unit == std::string::npos ? name : name.substr(0, unit);
}

std::string heap_type_shape(const TypeTable& types, int index) {
  const Type& t = types.at(index);
  std::string out = std::to_string(t.size);
  for (const auto& m : t.members) out += fmt::format(" {}@{}", m.name, m.offset * 8 + m.bit_offset);
  return out;
}

int TypeTable::find(const std::string& name) const {
  auto it = named.find(name);
  return it == named.end() ? -1 : it->second;
}

const FrameTypes* TypeTable::frame_at(uint64_t address) const {
  for (const auto& f : frames)
    if (f.address == address) return &f;
  return nullptr;
}

const Variable* TypeTable::variable_at(uint64_t address) const {
  for (const auto& v : variables)
    if (v.address == address && v.type >= 0) return &v;
  return nullptr;
}

std::string TypeTable::spell(int index) const {
  if (index < 0) return "void";
  const Type& t = at(index);
  switch (t.kind) {
    case TypeKind::Pointer:
      return spell(t.target) + " *";
    case TypeKind::Array:
      return spell(t.target) + (t.count ? fmt::format("[{}]", t.count) : "[]");
    case TypeKind::Struct:
    case TypeKind::Union:
      return t.name.empty() ? std::string(t.kind == TypeKind::Union ? "union {...}" : "struct {...}") : t.name;
    case TypeKind::Enum:
      return t.name.empty() ? "enum {...}" : t.name;
    case TypeKind::Function:
      return "function";
    default:
      return t.name;
  }
}

std::string TypeTable::layout(int index) const {
  std::set<int> open;
  std::function<std::string(int)> describe = [&](int i) -> std::string {
    if (i < 0) return "void";
    const Type& t = at(i);
    switch (t.kind) {
      case TypeKind::Pointer: {
        // Pointers are 8 bytes whatever they point to; the pointee by name
        // (its own layout is compared on its own).
        const Type* p = t.target >= 0 ? &at(t.target) : nullptr;
        return "*" + (p && !p->name.empty() ? p->name : p ? type_kind_name(p->kind) : std::string("void"));
      }
      case TypeKind::Array:
        return fmt::format("{}[{}]", describe(t.target), t.count);
      case TypeKind::Enum:
        return fmt::format("enum:{}", t.size);  // renumbered enumerators are compared by name, in src/data
      case TypeKind::Struct:
      case TypeKind::Union: {
        if (t.incomplete) return t.name + "(incomplete)";
        if (open.count(i)) return t.name;
        open.insert(i);
        std::string out = fmt::format("{}{}:{}{{", t.kind == TypeKind::Union ? "union" : "struct", t.name, t.size);
        for (const auto& m : t.members)
          out += fmt::format("{}@{}:{}/{}={};", m.name, m.offset, m.bit_offset, m.bit_size, describe(m.type));
        open.erase(i);
        return out + "}";
      }
      default:
        return fmt::format("{}:{}:{}", type_kind_name(t.kind), t.name, t.size);
    }
  };
  return describe(index);
}

Result<TypeTable> read_type_table(const ElfFile& binary) {
  DwarfHandle handle;
  handle.dwarf = dwarf_begin_elf(static_cast<Elf*>(binary.elf_handle()), DWARF_C_READ, nullptr);
  if (!handle.dwarf) return make_error("{}: no DWARF debug information (build with graft-cc)", binary.path().string());
  TypeTable table;
  TypeReader reader(table, binary);
  Dwarf_Off offset = 0, next = 0;
  size_t header_size = 0;
  while (dwarf_nextcu(handle.dwarf, offset, &next, &header_size, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu;
    if (dwarf_offdie(handle.dwarf, offset + header_size, &cu)) {
      const char* name = dwarf_diename(&cu);
      Dwarf_Attribute attribute;
      const char* directory = dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attribute));
      std::string unit = name ? name : "?";
      if (directory && !unit.starts_with("/")) unit = std::string(directory) + "/" + unit;
      reader.enter_unit(unit);
      collect(reader, &cu, name ? std::filesystem::path(name).filename().string() : "?", "");
    }
    offset = next;
  }
  reader.finish();
  return table;
}

}  // namespace graft
