// The data types of a binary as graft needs them to update live data: a
// table of types read from DWARF (typedefs and qualifiers resolved away),
// and the variables in static storage that hold them. Serialisable, so a
// patch carries the old and new layouts it transforms between.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "elf/elf_file.h"
#include "common/error.h"

namespace graft {

enum class TypeKind : uint8_t { Void, Signed, Unsigned, Float, Bool, Enum, Pointer, Struct, Union, Array, Function, Unknown };
const char* type_kind_name(TypeKind kind);
// A number of some kind: an integer, a bool, an enum or a floating point value.
inline bool numeric(TypeKind kind) {
  return kind == TypeKind::Signed || kind == TypeKind::Unsigned || kind == TypeKind::Bool || kind == TypeKind::Enum ||
         kind == TypeKind::Float;
}

struct Member {
  std::string name;          // "" for an anonymous struct or union member
  uint64_t offset = 0;       // bytes from the start of the aggregate
  uint32_t bit_size = 0;     // 0: not a bit-field
  uint32_t bit_offset = 0;   // bit-field: bits from `offset`, counted from the least significant bit
  int type = -1;
};

struct Type {
  TypeKind kind = TypeKind::Unknown;
  std::string name;          // "struct kv_entry", "int", "enum color"; "" if anonymous
  uint64_t size = 0;
  int target = -1;           // Pointer: the pointee (-1: void); Array: the element
  uint64_t count = 0;        // Array: number of elements (0: unknown, a flexible array member)
  bool incomplete = false;   // declared, never defined in this binary
  std::vector<Member> members;                              // Struct, Union
  std::vector<std::pair<std::string, int64_t>> enumerators;  // Enum
};

struct Variable {
  std::string key;           // "name" if external, else "<unit>::<function.>name" (as in Layouts)
  uint64_t address = 0;      // link-time address
  int type = -1;
  bool constant = false;     // declared const: no state to keep
  bool thread_local_storage = false;
};

// Where a local's value is over some pcs, in the forms graft reads from a
// stopped frame (DWARF registers: 0-15 rax rdx rcx rbx rsi rdi rbp rsp
// r8-r15). Anything else DWARF can say (pieces, computed or implicit values,
// entry values) is Unknown.
struct LocalPlace {
  enum class Kind : uint8_t {
    Unknown,
    InRegister,        // the value is register `reg` (DW_OP_regN)
    AtRegisterOffset,  // in memory at register `reg` + `offset` (DW_OP_bregN, DW_OP_fbreg on a register frame base)
    AtCfaOffset,       // in memory at the frame's CFA + `offset` (DW_OP_fbreg on DW_OP_call_frame_cfa)
    // In register `reg`, one a call clobbers (rax, rcx, rdx, rsi, rdi,
    // r8-r11): a frame waiting for a call cannot use it after the call (the
    // ABI), so it holds nothing there; an executing frame's place is unknown.
    InCallClobberedRegister,
  };
  Kind kind = Kind::Unknown;
  int reg = -1;
  int64_t offset = 0;
  bool known() const { return kind != Kind::Unknown && kind != Kind::InCallClobberedRegister; }
  bool dead_across_calls() const { return kind == Kind::InCallClobberedRegister; }
};

struct LiveRange {
  uint64_t start = 0, end = 0;  // [start, end): link-time addresses, or offsets from an entry
  LocalPlace place;
};

// A function's frame as DWARF describes it: its parameters and locals (those
// of functions inlined into it included), each with where it is live.
struct FrameLocal {
  std::string name;
  int type = -1;
  std::vector<LiveRange> live;  // where it has a location, and what that location is
  // A single expression naming a stack slot for the whole scope (Unknown in
  // `live`: garbage until first stored). Copying the whole slot byte for
  // byte needs no knowledge of when it was stored (a frame transfer does).
  LocalPlace scope_slot;
};
struct FrameTypes {
  uint64_t address = 0;  // link-time entry (DW_AT_low_pc)
  std::vector<FrameLocal> locals;
  int parameters = 0;    // the function's own parameters (`...` counts as one)
};

struct TypeTable {
  std::vector<Type> types;
  std::vector<Variable> variables;
  std::vector<FrameTypes> frames;
  std::map<std::string, int> named;        // "struct conn" -> index of its definition
  std::vector<std::string> ambiguous;      // names with different layouts in different units
  // A struct another unit defines with other members (hiredis's struct dict
  // beside redis's) is a type of its own, named "struct dict@async.c" after
  // the first unit that defines it (directives write dict@async.c): its
  // variant name, by unit and by the name the source spells (not
  // serialised). `ambiguous` keeps the names whose definitions differ only
  // deeper (a member's type).
  std::map<std::string, std::map<std::string, std::string>> variants;  // unit -> "struct dict" -> variant name
  // For graft-cc's member facts (not serialised): the units (DWARF's
  // DW_AT_name, made absolute with DW_AT_comp_dir) that define or declare
  // each named aggregate (a unit that only declares one may still pass or
  // keep pointers to it), every unit with DWARF, and the aggregates defined
  // in a system header (/usr/include): a library's types, which library code writes.
  std::map<int, std::set<std::string>> defined_in;
  std::set<std::string> units;
  std::set<int> system_types;
  // The functions each unit's DWARF names (defined, or declared for its call sites).
  std::map<std::string, std::set<std::string>> unit_functions;

  const Type& at(int index) const { return types.at(static_cast<size_t>(index)); }
  // The index of a named aggregate or enum, or -1.
  int find(const std::string& name) const;
  // The frame of the function whose entry (link-time) is `address`, or nullptr.
  const FrameTypes* frame_at(uint64_t address) const;
  // The typed variable in static storage at `address` (link-time), or nullptr.
  const Variable* variable_at(uint64_t address) const;
  // A readable spelling: "struct conn *", "int[4]", "unsigned long".
  std::string spell(int index) const;
  // The layout as a string: equal exactly when two types lay out data the same
  // way (named aggregates inside are spelled out, to any depth).
  std::string layout(int index) const;
};

Result<TypeTable> read_type_table(const ElfFile& binary);

// The name a struct's source spells: a variant's (TypeTable::variants)
// without its unit ("struct dict@async.c" -> "struct dict").
std::string source_name(const std::string& name);

// A struct's shape as its heap type tag ID hashes it (heap_type_shape in
// common/member_facts_format.h): its size, then " NAME@BITS" per member.
std::string heap_type_shape(const TypeTable& types, int index);

}  // namespace graft
