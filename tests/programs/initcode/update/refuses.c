// An initialiser that finds the state it needs missing: the update is abandoned.
#include <graft/graft.h>

GRAFT_INIT(custom_hdrs, char *, value) {
  (void)value;
  return 1;
}
