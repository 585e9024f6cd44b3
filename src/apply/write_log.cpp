#include "apply/write_log.h"

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

Status WriteLog::commit(TracedProcess& process, const std::function<Status()>& then) const {
  for (size_t i = 0; i < writes_.size(); ++i)
    if (auto written = process.write(writes_[i].address, writes_[i].bytes); !written) {
      undo_writes(process, i);
      return written.error().context("the update was rolled back");
    }
  std::vector<std::pair<Thread*, Registers>> set;  // each thread's registers before, for the undo
  auto roll_back = [&] {
    for (auto& [thread, previous] : set) {
      thread->regs = previous;
      (void)process.set_registers(*thread);
    }
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
  if (then)
    if (Status after = then(); !after) {
      roll_back();
      return after;
    }
  return ok();
}

}  // namespace graft
