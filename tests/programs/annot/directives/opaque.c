// The union declared, and both void * members declared opaque (wrongly:
// slot.value holds items, and stash.blob a blob): the user's word is taken.
#include <graft/graft.h>

#include "types.h"

GRAFT_UNION_MEMBER(cell, u, kind, KIND_EMPTY, number);
GRAFT_UNION_MEMBER(cell, u, kind, KIND_NUMBER, number);
GRAFT_UNION_MEMBER(cell, u, kind, 2, blob);  // KIND_BLOB, as a number
GRAFT_OPAQUE(slot, value);
GRAFT_OPAQUE(stash, blob);
