// Does not compile: a misspelt field.
#include <graft/graft.h>

#include "graft_old_types.h"
#include "types.h"

GRAFT_TRANSFORM(node, from, to) { to->wieght = from->count; }
