// What /proc says of a process's threads (tasks), for the waits that must
// not outlive the target: a thread on its way out is never waited for.
#pragma once
#include <sys/types.h>

namespace graft {

// Whether the thread `tid` of `pid` is a zombie, dead, gone, or on its way
// out (PF_EXITING: killed, or ended by another thread's exit or execve).
bool task_exiting(pid_t pid, pid_t tid);

// Whether any thread of `pid` is (or the process is gone).
bool any_task_exiting(pid_t pid);

// Whether every thread of `pid` is (or the process is gone).
bool every_task_exiting(pid_t pid);

// Whether a thread of `pid` that is not on its way out waits in execve or
// execveat: another program is taking the process over, and waits for its
// other threads to end (for their tracer to reap them).
bool task_in_execve(pid_t pid);

}  // namespace graft
