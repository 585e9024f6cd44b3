// Where the intrusive list's links lead: into the `link` of a struct item,
// or to the list's head (a global, inside no item).
#include <graft/graft.h>

#include "types.h"

GRAFT_POINTS_INTO(list_head, next, item, link);
GRAFT_POINTS_INTO(list_head, prev, item, link);
