#include "prog.h"

static __thread long local_ticks;  // local-exec: %fs:local_ticks@tpoff
static __thread long added_ticks;  // new in v3: running threads have no storage for it

long step(void) {
  local_ticks += 1;
  shared_ticks += 1;
  added_ticks += 1;
  return local_ticks * 1000 + shared_ticks + added_ticks * 100;
}
