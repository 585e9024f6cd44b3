// What graft diff asks for: WORKER (an anonymous struct's typedef name) .ctx holds a struct task.
#include <graft/graft.h>

#include "worker.h"

GRAFT_POINTS_TO(WORKER, ctx, task);
