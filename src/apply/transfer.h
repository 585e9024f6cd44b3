// Frames moved into a function's new body at the commit (on-stack
// replacement at a transfer point, patch/patch.h FrameTransfer): the stack
// writes that rebuild each frame and the registers each thread resumes with.
#pragma once
#include <functional>
#include <map>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "migrate/migrate.h"
#include "patch/patch.h"
#include "target/process.h"
#include "apply/link.h"

namespace graft::apply {

struct TransferTarget {
  const FrameTransfer* transfer = nullptr;  // nullptr: the patch has none for that address
  uint64_t new_entry = 0;                   // the new code's entry in the region
};

// Computes, with every thread stopped, each task's new frame: the writes
// (with the bytes they replace) join the commit's, `registers` the threads'
// new registers, set once every write is in. `target`: the transfer for a
// task. Nothing is written here.
Result<std::vector<DataWrite>> plan_frame_transfers(const TracedProcess& process,
                                                    const std::vector<FrameTransferTask>& tasks,
                                                    const std::map<pid_t, std::vector<StackFrame>>& frames,
                                                    const std::function<TransferTarget(const FrameTransferTask&)>& target,
                                                    const link::Image& image,
                                                    std::map<pid_t, user_regs_struct>& registers);

}  // namespace graft::apply
