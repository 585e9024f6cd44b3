// A user's transformer for revert v1 -> v2: extra made from old fields.
#include <graft/graft.h>

#include "graft_old_types.h"
#include "types.h"

GRAFT_TRANSFORM(item, from, to) { to->extra = from->id + from->junk; }
