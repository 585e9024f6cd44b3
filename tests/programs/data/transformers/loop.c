// A transformer that never finishes on one object (as one waiting for a lock
// a stopped thread holds would): the time limit abandons the update.
#include <graft/graft.h>

#include "graft_old_types.h"
#include "types.h"

GRAFT_TRANSFORM(node, from, to) {
  if (from->count == 1)
    for (;;) __asm__ volatile("pause");
  to->weight = 1;
}
