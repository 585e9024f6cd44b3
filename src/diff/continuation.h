// Equivalence for continuation: whether a frame suspended in a call inside a
// function's old code may return into its new code and run on there.
//
// Both versions are decoded (Zydis). They must have the same instruction
// boundaries, mnemonics, operand kinds and registers, and the same frame
// layout (every rsp/rbp-based displacement, every stack adjustment). They may
// differ only in fields covered by a relocation (a global that moved, a
// callee), in displacements off other registers (struct offsets) and in
// immediates (sizes, constants). A forward taint analysis over the code then
// finds, for each call, whether a value computed from such a difference (an
// address of a field at its old offset, a size, a pointer to a moved global)
// may be held across the call, in a callee-saved register, an argument
// register or the frame: only calls where none is are places to continue.
#pragma once
#include <Zydis/Zydis.h>

#include <functional>

#include "diff/compare.h"
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

// The verdict for one replaced function (`returns`: old -> new offsets from
// the entry, which are equal: the boundaries are).
Continuation compare_for_continuation(const Build& old_build, const Definition& old_def, const Build& new_build,
                                      const Definition& new_def, const SameAddress& same_address);

}  // namespace graft::diff
