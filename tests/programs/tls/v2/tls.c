#include "prog.h"

static __thread long local_ticks;  // local-exec: %fs:local_ticks@tpoff

// local * 1000 + shared (+ library * 100000); v2 counts shared steps by ten
long step(void) {
  local_ticks += 1;
  shared_ticks += 10;
  return local_ticks * 1000 + shared_ticks + LIBRARY_STEP(5);
}
