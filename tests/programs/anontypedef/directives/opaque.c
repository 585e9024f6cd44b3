// THREAD is an anonymous struct's typedef name: it names the struct here.
#include <graft/graft.h>

#include "thread.h"

GRAFT_OPAQUE(THREAD, ctx);
