// A transformer for THREAD: it has no tag for GRAFT_TRANSFORM to name.
#include <graft/graft.h>

#include "thread.h"

GRAFT_OPAQUE(THREAD, ctx);
GRAFT_TRANSFORM(THREAD, from, to) { to->id = from->id; }
