// Runs a patch's update-time code (graft.h GRAFT_INIT, GRAFT_RERUN,
// GRAFT_ON_UPDATE) inside the target, after the patch is mapped and before
// graft waits for the safe moment: one thread of the program is borrowed
// (preferably one idle in a system call, so that it holds no lock the code
// may need) while the others run on, and each function is called through the
// patch's runner on a stack of graft's, ending on a trap.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "patch/patch.h"
#include "target/process.h"

namespace graft::apply {

struct UpdateCodeReport {
  size_t calls = 0;     // functions run
  pid_t thread = 0;     // the thread borrowed for them
  bool idle = false;    // it was blocked in a system call
  uint64_t run_us = 0;  // from stopping that thread to letting it go
};

// A thread of the program to run code in, stopped (the others keep
// running): one blocked in a waiting system call (read, accept, epoll_wait,
// poll, ...) if any, else one in any system call, else the first. Its
// system call restarts as before when it is let go.
struct ChosenThread {
  pid_t tid = 0;
  bool idle = false;
};
Result<ChosenThread> stop_idle_thread(TracedProcess& process);

// `address_of(identity)`: where a function or global is in the target (the
// patch's definition, else the running one). Runs every init (on its
// global's storage in the patch), then every rerun, then the on-update
// function, each within `limit`. A nonzero return, a fault, an unexpected
// stop or the time limit is a one-line error naming the function; the
// borrowed thread is then exactly as it was. The thread is let go at the end
// in every case.
Status run_update_code(TracedProcess& process, const UpdateCode& code,
                       const std::function<Result<uint64_t>(const std::string&)>& address_of,
                       std::chrono::milliseconds limit, UpdateCodeReport& report);

// The commit-time code (graft.h GRAFT_AT_COMMIT), if the patch has some:
// run with every thread stopped, once the commit's writes are in, in the
// first thread (its registers put back after). An error (nonzero return,
// fault, time limit) is one line naming the function; the caller rolls the
// commit back.
Status run_at_commit(TracedProcess& process, const UpdateCode& code,
                     const std::function<Result<uint64_t>(const std::string&)>& address_of,
                     std::chrono::milliseconds limit, UpdateCodeReport& report);

}  // namespace graft::apply
