#include <graft/graft.h>
GRAFT_TAIL(msg, body);
