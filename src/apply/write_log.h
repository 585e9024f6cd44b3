// The commit of an update as one ordered log: memory writes (each with the
// bytes it replaces) in the order they must land, then the data words of
// epoll watches whose objects moved, then the registers of the threads
// whose frames or pointers moved. Committed all or nothing: if one step
// fails, every step already taken is undone, newest first.
#pragma once
#include <sys/types.h>

#include <functional>
#include <map>
#include <vector>

#include "migrate/migrate.h"
#include "target/process.h"

namespace graft {

class WriteLog {
 public:
  // Appended in commit order. A write with no `previous` (the registry
  // record, in memory of the update's own) is not undone.
  void add(DataWrite write) { writes_.push_back(std::move(write)); }
  void append(std::vector<DataWrite> writes);
  // Registers a thread resumes with, set once every memory write is in; a
  // thread's second set replaces its first.
  void set_registers(pid_t tid, const Registers& registers) { registers_[tid] = registers; }
  // The registers the log will give `tid`, or its current ones.
  Registers registers_of(const Thread& thread) const;
  bool sets_registers_of(pid_t tid) const { return registers_.count(tid) > 0; }
  // An epoll watch's data word, set once every memory write is in.
  void add_epoll_write(const EpollDataWrite& write) { epoll_writes_.push_back(write); }

  const std::vector<DataWrite>& writes() const { return writes_; }
  size_t threads_moved() const { return registers_.size(); }

  // Every thread must be stopped. `then`, if given, runs once every write
  // and register set is in (the commit-time code). On any failure, the
  // target is as before and the error says the update was rolled back.
  Status commit(TracedProcess& process, const std::function<Status()>& then = {}) const;

 private:
  Status commit_held(TracedProcess& process, const std::function<Status()>& then) const;
  void undo_writes(const TracedProcess& process, size_t count) const;
  void undo_epoll_words(TracedProcess& process, size_t count) const;
  std::vector<DataWrite> writes_;
  std::vector<EpollDataWrite> epoll_writes_;
  std::map<pid_t, Registers> registers_;
};

}  // namespace graft
