// A transformer with a bug: it assumes every node has a successor, and
// dereferences NULL at the end of each list.
#include <graft/graft.h>

#include "graft_old_types.h"
#include "types.h"

GRAFT_TRANSFORM(node, from, to) { to->weight = from->next->count; }
