// Equivalence for continuation: whether a frame suspended in a call inside a
// function's old code may return into its new code and run on there.
//
// Both versions are decoded (Zydis). They must have the same instruction
// boundaries, mnemonics, operand kinds and registers, and the same frame
// layout (every rsp/rbp-based displacement, every stack adjustment). They may
// differ only in fields covered by a relocation (a global that moved, a
// callee), in displacements off other registers (struct offsets) and in
// immediates (sizes, constants). A forward analysis over the old code then
// finds where a value computed from such a difference (an address of a field
// at its old offset, a size, a pointer to a moved global) may be held when
// each call is made (registers, frame slots); a backward liveness over the
// code from the call's return address says what the code after the call may
// read there. A call is a place to continue when no such value is passed to
// it or live across it.
#pragma once
#include <Zydis/Zydis.h>

#include <functional>
#include <optional>

#include "diff/compare.h"
#include "elf/types.h"
#include "patch/patch.h"

namespace graft::diff {

// One decoded instruction of a function (Zydis).
struct Instruction {
  uint64_t offset = 0;  // from the section start
  ZydisDecodedInstruction ins;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

// The instructions of [start, start + size) of a section.
Result<std::vector<Instruction>> decode(const ElfSection& section, uint64_t start, uint64_t size);

// The 64-bit register enclosing `r` (eax -> rax), or `r`.
ZydisRegister whole(ZydisRegister r);

// Whether a relocated field yields the same address for the running old code
// and for the new code once the update is in (a callee's canonical entry, a
// global that keeps its storage, a merged string or constant with the same
// contents), or not (a global with new storage, a copied table). `type`: the
// relocation's.
using SameAddress = std::function<bool(const Target& old_target, const Target& new_target, uint32_t type)>;

// A local DWARF places in the frame's memory (for the extent of an object
// whose address the code takes).
struct FrameObject {
  LocalPlace place;
  uint64_t size = 0;
};

// Whether a frame waiting for one call may return into the new code, and if
// not, why (for --explain).
struct CallVerdict {
  uint64_t call = 0;   // the call instruction, from the entry
  uint64_t back = 0;   // its return address, from the entry
  std::string callee;  // its target's name, "" for an indirect call
  bool continues = false;
  std::string why;                   // why not
  std::optional<uint64_t> blocking;  // the instruction that computed the value that blocks, from the entry
};

// The verdict for one replaced function (`returns`: old -> new offsets from
// the entry, which are equal: the boundaries are). `objects`: the old frame's
// locals in memory (DWARF); `calls`, if given, gets every call's verdict.
Continuation compare_for_continuation(const Build& old_build, const Definition& old_def, const Build& new_build,
                                      const Definition& new_def, const SameAddress& same_address,
                                      const std::vector<FrameObject>& objects = {},
                                      std::vector<CallVerdict>* calls = nullptr);

}  // namespace graft::diff
