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
#include "apply/write_log.h"

namespace graft::apply {

struct TransferTarget {
  const FrameTransfer* transfer = nullptr;  // nullptr: the patch has none for that address
  uint64_t new_entry = 0;                   // the new code's entry in the region
};

// Computes, with every thread stopped, each task's new frame: the writes
// (with the bytes they replace) join the commit's, `registers` the threads'
// new registers, set once every write is in. `target`: the transfer for a
// task. Nothing is written here.
// The old frame is read as `pending` (the commit's writes planned so far:
// the migration's rewrites of pointers in it) will leave it, and the
// thread's registers as it will set them.
Result<std::vector<DataWrite>> plan_frame_transfers(const TracedProcess& process,
                                                    const std::vector<FrameTransferTask>& tasks,
                                                    const std::map<pid_t, std::vector<StackFrame>>& frames,
                                                    const std::function<TransferTarget(const FrameTransferTask&)>& target,
                                                    const link::Image& image, const WriteLog& pending,
                                                    std::map<pid_t, Registers>& registers);

// Code, run in the target, that rebuilds the frame of a thread returning
// from the call at transfer point `t` and continues in the new body at
// `new_return`: the same moves as plan_frame_transfers, done by the thread
// itself when the call returns. A thread blocked inside that call at the
// commit gets its return slot pointed at this code, so an idle thread never
// holds the update. `code_address(offset)`: what the new code's RIP-relative
// lea at its entry + offset computes (CodeAddress moves). The code's length
// depends only on `t`, so it can be sized before anything is placed.
Result<std::vector<uint8_t>> frame_rebuild_code(const FrameTransfer& t, uint64_t new_return,
                                                const std::function<Result<uint64_t>(int64_t)>& code_address);

// Where lea at `address` of the relocated new code points (a CodeAddress move).
Result<uint64_t> new_code_lea_target(const link::Image& image, uint64_t address);

}  // namespace graft::apply
