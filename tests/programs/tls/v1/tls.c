#include "prog.h"

static __thread long local_ticks;  // local-exec: %fs:local_ticks@tpoff

// local * 1000 + shared (+ library * 100000)
long step(void) {
  local_ticks += 1;
  shared_ticks += 1;
  return local_ticks * 1000 + shared_ticks + LIBRARY_STEP(1);
}
