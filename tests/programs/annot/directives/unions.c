// Only the union declared: the void * and the integer are left unsaid.
#include <graft/graft.h>

#include "types.h"

GRAFT_UNION_MEMBER(cell, u, kind, KIND_EMPTY, number);
GRAFT_UNION_MEMBER(cell, u, kind, KIND_NUMBER, number);
GRAFT_UNION_MEMBER(cell, u, kind, 2, blob);  // KIND_BLOB, as a number
