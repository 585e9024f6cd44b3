// Reaching a safe moment in a multi-threaded process: every thread stopped,
// none executing or about to return into code the commit replaces.
//
// Threads that are not safe get dynamic checkpoints: a one-shot breakpoint at
// the return address of their outermost affected frame, and a breakpoint on
// each affected function's entry, where a thread counts as safe (it will take
// the new jump). Everything runs between checks; a thread that arrives is
// never held for long (it may own a lock the others need), and the whole set
// is re-checked with all threads stopped each time one arrives.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "target/process.h"
#include "target/unwind.h"

namespace graft {

struct AffectedRange {
  uint64_t start = 0, end = 0;  // code no thread may be in, nor return into
  uint64_t entry = 0;           // the canonical entry in it, where a thread may wait (0: none)
  std::string function;         // for reports
  // Return addresses in this range where a frame waiting for a call does not
  // block: it continues in the new code, at the address mapped to (the
  // function is continuable, patch/patch.h Continuation).
  std::map<uint64_t, uint64_t> continues;
  // Return addresses in this range where a thread that just returned from
  // the call (its innermost frame exactly there) does not block: its frame
  // is rebuilt for the new code at the commit (patch/patch.h FrameTransfer),
  // mapped to the new return address. A thread waiting in such a call gets
  // its checkpoint there, and waits there like at an entry.
  std::map<uint64_t, uint64_t> transfers;
  bool executing_only = false;  // only a thread executing in it is kept, not a frame waiting for a call
  // Kept because a frame there may point to changed data at a place DWARF
  // does not give (migrate/frame_holders.h), not because its code changed.
  bool may_point_to_changed_data = false;
};

// A thread whose frame moves into a function's new body at the commit.
struct FrameTransferTask {
  pid_t tid = 0;
  uint64_t from = 0, to = 0;  // its pc (the old return address) and the new one
  uint64_t cfa = 0;           // its frame's CFA, as the unwinder found it
  std::string function;
};

// A frame that continues in the new code: at the commit, with every thread
// stopped, its return slot is rewritten from `from` to `to`.
struct FrameRemap {
  pid_t tid = 0;
  RemoteAddress slot;  // the stack word holding the return address
  RemoteAddress from, to;
  std::string function;
  bool moves = false;  // `to` is a transfer point's rebuild: the frame moves into the new body on return
};

struct CheckpointOptions {
  // Where an address is in the sources ("file:line"), for the refusal report.
  std::function<std::string(uint64_t)> source_line;
  // graft_update_point_reached() (graft.h) in the target, if it has update
  // points: a checkpoint where threads wait like at an entry, and the flag
  // that sends them there while the update waits.
  uint64_t update_point = 0;
  uint64_t update_pending_flag = 0;
  std::chrono::milliseconds timeout{5000};
  // Longest a thread waits at an entry, counted while the others run; at
  // least as long as one stop and check (holding it costs no more than that).
  // Each time parked threads must be let go before the others arrived (a
  // busy pool: they never meet within the limit), the limit doubles, up to
  // max_hold; a thread blocked on a lock while others are parked lets them
  // go at once (a parked thread may hold that lock).
  std::chrono::microseconds hold_limit{2000};
  std::chrono::microseconds max_hold{64000};
  bool dynamic_checkpoints = true;             // plant breakpoints (else only poll)
  bool detach_after_commit = false;            // let go of the process from the commit's stop
  // What to do when no safe moment comes, for the refusal ("" : the advice
  // for an update that waits on functions that never return).
  std::string hint;
};

// A frame of a blocking thread that is in an affected range.
struct BlockingFrame {
  std::string function;    // the affected function
  std::string where;       // "file:line" in the sources, "" if unknown (filled in for the refusal)
  bool executing = false;  // the thread runs it (else it is on the stack, to be returned into)
  uint64_t address = 0;    // the pc, or the return address - 1 (inside the call)
  bool may_point_to_changed_data = false;  // AffectedRange::may_point_to_changed_data
};

// A thread that kept the update from happening.
struct Blocker {
  pid_t tid = 0;
  std::string thread_name;
  std::vector<BlockingFrame> frames;  // innermost first: where it is, then what called it
  std::string problem;                // instead of frames: why its stack could not be examined
};

struct CheckpointReport {
  size_t attempts = 0;       // checks with every thread stopped
  size_t arrivals = 0;       // threads that reached a planted checkpoint
  uint64_t pause_us = 0;     // longest time all threads were stopped at once
  uint64_t hold_us = 0;      // longest time one thread waited at an entry while the others ran
  // When `commit` runs: the frames it must move into the new code (it
  // rewrites every one of them, or fails).
  std::vector<FrameRemap> remaps;
  // When `commit` runs: the threads whose frame it must rebuild in new code.
  std::vector<FrameTransferTask> transfers;
  // When `commit` runs: every thread's frames, innermost first, as the check unwound them.
  std::map<pid_t, std::vector<StackFrame>> frames;
  // Threads stopped on a return checkpoint they just reached: a call has
  // just returned, so their call-clobbered registers other than rax and rdx
  // hold nothing (the ABI), whatever value the callee left there.
  std::set<pid_t> just_returned;
  // At the deadline: every thread that still blocked, and what to do about it.
  std::vector<Blocker> blocking;
  std::string hint;
};

// Runs `commit` at the first safe moment, with every thread stopped; removes
// every breakpoint in every outcome. At the deadline: an error naming the
// threads and functions that kept the update from happening.
Status at_safe_moment(TracedProcess& process, const std::vector<AffectedRange>& ranges,
                      const CheckpointOptions& options, CheckpointReport& report,
                      const std::function<Status()>& commit);

}  // namespace graft
