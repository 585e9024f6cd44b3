// Transformers for data v1 -> v2 (graft diff --transform): a new field
// computed from old ones, and defaults overridden.
#include <graft/graft.h>

#include "graft_old_types.h"  // the old layouts (graft diff ... --transform-header graft_old_types.h)
#include "types.h"            // the new ones: the program's own header

// weight is new: made from two old fields; spare from a field v2 removes.
GRAFT_TRANSFORM(node, from, to) {
  to->weight = from->count * 10 + from->level;
  to->spare = from->junk + (int)from->flags;
  to->score = (float)(from->score * 2);  // instead of the default conversion
}

// Overrides the default for a field both versions have.
GRAFT_TRANSFORM(tree, from, to) { to->key = from->key + 1000; }

// stats is a global whose type changed: its new storage is filled the same way.
GRAFT_TRANSFORM(stats, from, to) { to->ratio = (double)from->misses / (double)from->hits; }
