// A member THREAD does not have: the refusal names THREAD.
#include <graft/graft.h>

#include "thread.h"

GRAFT_OPAQUE(THREAD, context);
