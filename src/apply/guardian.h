// The guardian of an update: a process graft starts before it touches the
// target, in a session of its own (setsid: a kill of graft's process group
// does not take it), which outlives graft. When graft's update ends, it
// ends too. When graft dies first (kill -9), it waits for the kernel to let
// go of the target, reads graft's journal (target/journal.h) and puts the
// target right (apply/recover.h): the commit finished or rolled back, no
// int3 left, graft's registers out of every thread, uncommitted memory
// unmapped, and the process continued if graft's holds stopped it. What it
// did goes to graft's stderr, one line each.
#pragma once
#include <sys/types.h>

#include "common/error.h"
#include "target/journal.h"

namespace graft {

class Guardian {
 public:
  // Started and watching before this returns.
  static Result<Guardian> start(const Journal& journal, pid_t target);
  ~Guardian();  // the update ended: the guardian goes (the journal says finished)
  Guardian(Guardian&& other) noexcept : pid_(other.pid_), done_fd_(other.done_fd_) { other.done_fd_ = -1; }
  Guardian(const Guardian&) = delete;
  Guardian& operator=(const Guardian&) = delete;
  Guardian& operator=(Guardian&&) = delete;
  pid_t pid() const { return pid_; }

 private:
  Guardian(pid_t pid, int done_fd) : pid_(pid), done_fd_(done_fd) {}
  pid_t pid_;
  int done_fd_;  // closed when the update ends (or graft dies): the guardian wakes
};

}  // namespace graft
