// An update of a live process as one transaction, shared by apply and
// revert. Its phases, in the order they run:
//
//   prepare  the caller attaches (begin), links, and maps what the update
//            needs into the target (hold): nothing the program can see yet;
//   wait     dynamic checkpoints until a safe moment, every thread stopped
//            (checkpoint/checkpoint.h);
//   plan     with every thread stopped, the caller's plan function computes
//            the commit's write log: code entries, data, frames, registers.
//            Nothing is written;
//   commit   the log, all or nothing (apply/write_log.h);
//   finish   what the update mapped stays, graft detaches.
//
// Whatever phase fails, everything the earlier phases did to the target is
// undone: mappings unmap themselves, the log rolls back, the attachment
// resumes and detaches every thread.
#pragma once
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "apply/guardian.h"
#include "apply/write_log.h"
#include "checkpoint/checkpoint.h"
#include "target/process.h"
#include "target/remote.h"

namespace graft {

// Catchable signals wait until the transaction ends, so an impatient Ctrl-C
// never leaves the target with injected registers or half a commit.
class SignalShield {
 public:
  SignalShield();
  ~SignalShield();
  SignalShield(const SignalShield&) = delete;
  SignalShield& operator=(const SignalShield&) = delete;

 private:
  sigset_t saved_;
};

class Transaction {
 public:
  // prepare: starts the update's guardian (apply/guardian.h), then attaches
  // to every thread of `pid`; nothing is stopped yet.
  static Result<std::unique_ptr<Transaction>> begin(pid_t pid);
  ~Transaction();  // unfinished: every effect undone, then detached
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  TracedProcess& process() { return *process_; }
  // prepare (or plan): memory the update mapped in the target; unmapped
  // unless the transaction finishes.
  void hold(RemoteMapping mapping) { mappings_.push_back(std::move(mapping)); }

  // The write log of the commit, computed with every thread stopped at the
  // safe moment the checkpoint search found (its report says where each
  // thread is and which frames move).
  using Plan = std::function<Result<WriteLog>(const CheckpointReport& moment)>;
  // wait, plan and commit. `report` says how the wait went, in every outcome.
  // `then`, if given, runs once the log is in, every thread still stopped;
  // its failure rolls the log back (WriteLog::commit).
  Status commit_at_safe_moment(const std::vector<AffectedRange>& ranges, const CheckpointOptions& options,
                               const Plan& plan, CheckpointReport& report, const std::function<Status()>& then = {});
  // finish: the held mappings are the target's now; every thread resumed, detached.
  Status finish();

 private:
  Transaction() = default;
  SignalShield shield_;                     // destroyed last
  Journal journal_;                         // what the guardian undoes if graft dies
  std::optional<Guardian> guardian_;        // goes once the journal says the update ended
  std::unique_ptr<TracedProcess> process_;  // detaches when destroyed
  std::vector<RemoteMapping> mappings_;     // destroyed first: unmapped unless kept
};

// The return slots of frames that move into other code at the commit
// (continuation, or back at a revert), each checked to still hold its old
// return address, with the bytes it replaces: part of the commit's log.
Result<std::vector<DataWrite>> frame_writes(const TracedProcess& process, const std::vector<FrameRemap>& remaps);

}  // namespace graft
