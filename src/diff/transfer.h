// Transfer points of a replaced function that is not continuable (its body
// changed): calls the old and new code share (the same callee, matched by
// order among the calls to it) where a thread that just returned from the
// call in the old code can be moved into the new code, its frame rebuilt.
//
// For each such call, the frame at the return address is described in both
// versions: its size (CFA - rsp, from the code's stack adjustments), the
// callee-saved registers its prologue saved, the locals DWARF places there.
// The new frame is built from the old: each new local live there from the
// old local of the same name and type (a register or a stack slot; an array
// or struct on the stack byte for byte), the call's result (rax), the
// caller's callee-saved registers where the new code saved them, and values
// the new code computed before its loop (a frame address, a constant, a
// RIP-relative address). A register or stack slot the new code reads after
// the call that none of these gives refuses the call, with the reason.
#pragma once
#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "diff/build.h"
#include "patch/patch.h"
#include "elf/types.h"

namespace graft::diff {

struct TransferSide {
  const Build& build;
  const Definition& definition;
  uint64_t address = 0;                 // the function's entry in the linked binary
  const FrameTypes* frame = nullptr;    // its locals (DWARF), nullptr if none
  const TypeTable& types;
};

// Fills c.transfers and c.not_transferable. `where`: "file:line" of an
// address of the new binary. `waits(callee)`: whether a thread may wait for
// long in a call to it (a waiting library call, or a function of the
// program that makes one): the calls where threads are found between
// iterations, the only candidates. `continuing`: return addresses (old
// offsets) where a frame continues in the new code already, not candidates.
void find_transfers(const TransferSide& old_side, const TransferSide& new_side,
                    const std::function<std::string(uint64_t)>& where,
                    const std::function<bool(const std::string&)>& waits, const std::set<uint64_t>& continuing,
                    Continuation& c);

}  // namespace graft::diff
