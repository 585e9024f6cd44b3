#include "apply/write_log.h"

#include "common/kill_point.h"
#include "target/remote.h"

namespace graft {

void WriteLog::append(std::vector<DataWrite> writes) {
  if (writes_.empty()) writes_ = std::move(writes);
  else writes_.insert(writes_.end(), std::make_move_iterator(writes.begin()), std::make_move_iterator(writes.end()));
}

Registers WriteLog::registers_of(const Thread& thread) const {
  auto it = registers_.find(thread.tid);
  return it == registers_.end() ? thread.regs : it->second;
}

void WriteLog::undo_writes(const TracedProcess& process, size_t count) const {
  for (size_t k = count; k-- > 0;)
    if (!writes_[k].previous.empty()) (void)process.write(writes_[k].address, writes_[k].previous);
}

void WriteLog::undo_epoll_words(TracedProcess& process, size_t count) const {
  std::vector<EpollWatch> set;
  for (size_t k = 0; k < count; ++k) set.push_back(epoll_writes_[k].watch);
  (void)set_epoll_data_back(process, set);
}

// Killed-graft safety: every thread is held from the first write on (a
// graft killed here leaves the process stopped, not running on half the
// writes), and the journal has the undo data before the first write, so
// that the guardian rolls a commit graft did not finish back.
Status WriteLog::commit(TracedProcess& process, const std::function<Status()>& then) const {
  process.hold_all();
  {
    std::vector<UndoWrite> undo;
    for (const auto& w : writes_)
      if (!w.previous.empty()) undo.push_back({w.address, std::vector<uint8_t>(w.previous.begin(), w.previous.end())});
    std::map<pid_t, Registers> before;
    for (const auto& [tid, regs] : registers_)
      if (const Thread* t = process.find(tid)) before[tid] = t->regs;
    std::vector<EpollWatch> epoll_before;
    for (const auto& w : epoll_writes_) epoll_before.push_back(w.watch);
    process.journal().commit_begins(undo, before, epoll_before);
  }
  Status done = commit_held(process, then);
  process.journal().commit_ends(done.ok());
  if (done) kill_point("committed");
  return done;
}

Status WriteLog::commit_held(TracedProcess& process, const std::function<Status()>& then) const {
  for (size_t i = 0; i < writes_.size(); ++i) {
    if (auto written = process.write(writes_[i].address, writes_[i].bytes); !written) {
      undo_writes(process, i);
      return written.error().context("the update was rolled back");
    }
    kill_point("commit");
  }
  size_t epoll_set = 0;
  if (!epoll_writes_.empty()) {
    if (Status set = set_epoll_data(process, epoll_writes_, epoll_set); !set) {
      undo_epoll_words(process, epoll_set);
      undo_writes(process, writes_.size());
      return set.error().context("the update was rolled back");
    }
    kill_point("epoll");
  }
  std::vector<std::pair<Thread*, Registers>> set;  // each thread's registers before, for the undo
  auto roll_back = [&] {
    for (auto& [thread, previous] : set) {
      thread->regs = previous;
      (void)process.set_registers(*thread);
    }
    undo_epoll_words(process, epoll_set);
    undo_writes(process, writes_.size());
  };
  for (const auto& [tid, regs] : registers_) {
    Thread* t = process.find(tid);
    Status done = t ? ok() : make_error("thread {} is gone", tid);
    if (t) {
      set.emplace_back(t, t->regs);
      t->regs = regs;
      done = process.set_registers(*t);
    }
    if (!done) {
      roll_back();
      return done.error().context("the update was rolled back");
    }
  }
  kill_point("registers");
  if (then)
    if (Status after = then(); !after) {
      roll_back();
      return after;
    }
  return ok();
}

}  // namespace graft
