// What the types of the annot program do not say, for graft diff --transform.
#include <graft/graft.h>

#include "types.h"

GRAFT_POINTS_TO(slot, value, item);     // the hash table's values are items
GRAFT_POINTS_TO(stash, blob, blob);     // a void *
GRAFT_POINTS_TO(stash, handle, blob);   // an integer holding an address
GRAFT_UNION_MEMBER(cell, u, kind, KIND_EMPTY, number);
GRAFT_UNION_MEMBER(cell, u, kind, KIND_NUMBER, number);
GRAFT_UNION_MEMBER(cell, u, kind, KIND_BLOB, blob);
