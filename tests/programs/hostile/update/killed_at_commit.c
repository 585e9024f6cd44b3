// Commit-time code that kills its own process: the target dies in the
// middle of the commit, with graft's writes in and every thread stopped.
// Raw system calls: the program imports neither kill() nor getpid().
#include <graft/graft.h>

static long system_call(long number, long a, long b) {
  long result;
  __asm__ volatile("syscall" : "=a"(result) : "a"(number), "D"(a), "S"(b) : "rcx", "r11", "memory");
  return result;
}

GRAFT_AT_COMMIT() {
  const long getpid = 39, kill = 62, sigkill = 9;
  system_call(kill, system_call(getpid, 0, 0), sigkill);
  return 0;
}
