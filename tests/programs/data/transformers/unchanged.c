// struct point is the same in both versions: there is nothing to transform.
#include <graft/graft.h>

#include "graft_old_types.h"
#include "types.h"

GRAFT_TRANSFORM(point, from, to) { to->x = from->y; }
