// One version of a function's machine code as a frame sees it: decoded
// instructions (Zydis), control flow, the stack depth before each
// instruction, the prologue's saves and whether rbp is the frame pointer;
// and a backward liveness over it (registers and 8-byte frame slots). Shared
// by continuation (what is live across a waiting call) and frame transfers.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "diff/build.h"
#include "diff/compare.h"
#include "diff/continuation.h"

namespace graft::diff {

constexpr int kRax = 0, kRbp = 6, kRsp = 7;
inline constexpr int kCalleeSaved[] = {3, 6, 12, 13, 14, 15};  // rbx rbp r12-r15
constexpr uint16_t kCallerSaved = 0x0f37;                      // rax rdx rcx rsi rdi r8-r11
constexpr uint16_t kArgumentRegisters = 0x0337;                // rax (al: vector arguments) rdx rcx rsi rdi r8 r9
// rax, rbx rbp r12-r15 (rdx, the upper half of a 16-byte result, is set just before a ret that uses it)
constexpr uint16_t kReturnReads = 0xf049;
inline constexpr const char* kRegisterNames[] = {"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
                                                 "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

// DWARF's number of a general register (rax rdx rcx rbx rsi rdi rbp rsp r8-r15), or -1.
int dwarf_number(ZydisRegister r);
bool is_callee_saved(int reg);

// The 8-byte slot (CFA-relative, slot * 8 .. slot * 8 + 8) holding a byte at `offset` from the CFA.
inline int64_t slot_of(int64_t offset) { return offset >= 0 ? offset / 8 : -((-offset + 7) / 8); }

struct Code {
  std::vector<Instruction> ins;
  uint64_t entry = 0;  // section offset of the entry
  std::vector<std::vector<size_t>> successors;
  std::vector<bool> anywhere;  // an indirect jump: every instruction may follow
  std::vector<bool> leaves;    // a jump out of the function (a tail call)
  // CFA - rsp before each instruction; unknown where paths disagree or rsp is set in a way not followed.
  std::vector<std::optional<int64_t>> depth;
  std::map<int, int64_t> saves;  // callee-saved register -> its slot, CFA-relative
  bool frame_pointer = false;    // rbp = CFA - 16 after the prologue
  std::string problem;           // the frame cannot be followed everywhere (a frame transfer refuses)
  std::vector<std::string> callees;  // per instruction: a direct call's target, else ""
  std::vector<std::string> tail_callees;  // per instruction: a direct jump out's target (a tail call), else ""
  // Per instruction: what its relocated field refers to, if it has one.
  struct Reference {
    Target target;
    uint64_t field = 0;  // the field's offset in the section
    int64_t at = 0;      // the address the instruction names, from the target (a pc-relative field's correction applied)
    bool got = false;    // the field is the target's GOT slot: the instruction loads the target's address
  };
  std::vector<std::optional<Reference>> refs;
  std::vector<bool> relocated;  // per instruction: a relocation lies in it (resolved or not)

  uint64_t at(size_t k) const { return ins[k].offset - entry; }
  std::optional<size_t> index_of(uint64_t offset) const;
  // The CFA-relative address a frame-based memory operand or lea refers to.
  std::optional<int64_t> frame_offset(size_t k, const ZydisDecodedOperand& o) const;
  // The CFA-relative address of a local DWARF places in memory: at a CFA
  // offset, off rbp where rbp is the frame pointer, or off rsp where the
  // depth before instruction `k` is known (only when `k` is given).
  std::optional<int64_t> place_offset(const LocalPlace& place, std::optional<size_t> k = std::nullopt) const;
  // Whether a memory operand is based on (or indexed by) the stack or frame pointer.
  bool frame_based(const ZydisDecodedOperand& o) const;
};

Result<Code> read_code(const Build& build, const Definition& def);

// The cases of the jump table the indirect jump at instruction `k` goes
// through (instruction indexes), when its table is found: a jump through a
// table the jump names (absolute entries), or through a register computed
// from a rip-relative table (`lea base, table; movslq (base,index,4), r; add
// base, r; jmp *r`: entries relative to the table), whose entries the
// object's relocations give. Empty when not found.
std::vector<size_t> jump_table_cases(const Build& build, const Definition& def, const Code& code, size_t k);

// Backward liveness: registers (a bit per DWARF number) and 8-byte frame
// slots (CFA-relative) the code may read before writing them, before each
// instruction; `unknown_read`: it may read its frame at a place not known
// (an indexed or unfollowed stack address) from there on.
struct Liveness {
  std::vector<uint16_t> registers;
  std::vector<std::set<int64_t>> slots;
  std::vector<std::set<int64_t>> bytes;  // the same, byte by byte (CFA-relative offsets)
  std::vector<bool> unknown_read;
};

Liveness liveness(const Code& code);

// The strongly connected components of an instruction graph (`next`: the
// successors of each instruction): `component` numbers them, `cyclic` marks
// the instructions on a cycle (a loop).
void strongly_connected(const std::vector<std::vector<size_t>>& next, std::vector<int>& component,
                        std::vector<bool>& cyclic);

constexpr size_t kUndefined = ~size_t{0};  // no definition (the caller's value) or a call's clobber
constexpr size_t kAtEntry = kUndefined - 1;  // the value the function was entered with (see reaching_definitions)

// Definitions reaching each instruction of `code`, forward to a fixed point.
// `defines(k)`: 0 if instruction k leaves the value alone, 1 if it defines
// it (k is the definition), 2 if it makes it unknown (kUndefined). The
// entry gives `entry`: kUndefined, or kAtEntry to tell the value the
// function was entered with from a call's clobber.
std::vector<std::set<size_t>> reaching_definitions(const Code& code, const std::function<int(size_t)>& defines,
                                                   size_t entry = kUndefined);

// Reaching definitions of register `reg` (a call clobbers a caller-saved
// one; with `call_defines_result`, a call defines rax, its result).
std::vector<std::set<size_t>> register_definitions(const Code& code, int reg, size_t entry = kUndefined,
                                                   bool call_defines_result = false);

// One version of the function: its code and its loops.
struct Loops {
  std::vector<int> component;  // strongly connected components of the code
  std::vector<bool> cyclic;
  explicit Loops(const Code& code) { strongly_connected(code.successors, component, cyclic); }
  bool same_loop(size_t a, size_t b) const { return cyclic[b] && component[a] == component[b]; }
};

}  // namespace graft::diff
