#include <graft/graft.h>

#include "types.h"

GRAFT_POINTS_INTO(list_head, next, item, key);  // key is no struct list_head
