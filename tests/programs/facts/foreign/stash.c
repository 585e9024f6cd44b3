// Code not built with graft-cc (the test compiles it with plain clang and
// links it in): it stores into struct stash.item, which no record shows.
#include "types.h"

void foreign_stash(struct stash* s, void* item) {
  if (!s->item) s->item = item;
}
