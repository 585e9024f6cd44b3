#include "apply/transaction.h"

#include <cstring>

#include "common/kill_point.h"

namespace graft {

SignalShield::SignalShield() {
  sigset_t block;
  sigemptyset(&block);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) sigaddset(&block, s);
  pthread_sigmask(SIG_BLOCK, &block, &saved_);
}

SignalShield::~SignalShield() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

Result<std::unique_ptr<Transaction>> Transaction::begin(pid_t pid) {
  GRAFT_TRY(check_attachable(pid));
  std::unique_ptr<Transaction> t(new Transaction());
  GRAFT_ASSIGN(t->journal_, Journal::create(pid));
  GRAFT_ASSIGN(auto guardian, Guardian::start(t->journal_, pid));
  t->guardian_.emplace(std::move(guardian));
  GRAFT_ASSIGN(t->process_, TracedProcess::attach(pid));
  t->process_->set_journal(t->journal_);
  kill_point("attach");
  return t;
}

Transaction::~Transaction() {
  // Unmapping runs system calls in the target: every thread stopped first,
  // so that none is running in (or about to enter) what goes away.
  if (!mappings_.empty() && process_) (void)process_->stop_all();
  mappings_.clear();
  process_.reset();  // detached: nothing of graft's is left in the target
  journal_.finished();
}

Status Transaction::commit_at_safe_moment(const std::vector<AffectedRange>& ranges, const CheckpointOptions& options,
                                          const Plan& plan, CheckpointReport& report,
                                          const std::function<Status()>& then) {
  return at_safe_moment(*process_, ranges, options, report, [&]() -> Status {
    GRAFT_ASSIGN(const WriteLog log, plan(report));
    return log.commit(*process_, then);
  });
}

Status Transaction::finish() {
  for (auto& m : mappings_) m.keep();
  mappings_.clear();
  kill_point("finish");
  return process_->detach();
}

Result<std::vector<DataWrite>> frame_writes(const TracedProcess& process, const std::vector<FrameRemap>& remaps) {
  std::vector<DataWrite> writes;
  for (const auto& r : remaps) {
    GRAFT_ASSIGN(auto current, process.read(r.slot, 8));
    uint64_t value = 0;
    std::memcpy(&value, current.data(), 8);
    if (value != r.from.value())
      return make_error("internal: thread {}'s return address into {} at {:#x} changed under the stop; nothing was changed",
                        r.tid, r.function, r.slot);
    DataWrite w{r.slot, Bytes(8), Bytes(current.begin(), current.end())};
    const uint64_t to = r.to.value();
    std::memcpy(w.bytes.data(), &to, 8);
    writes.push_back(std::move(w));
  }
  return writes;
}

}  // namespace graft
