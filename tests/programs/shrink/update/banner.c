// v2's banner given at the commit: the running string need not fit the
// shrunk array, the commit-time code writes the new value after the migration.
#include <graft/graft.h>
#include <string.h>

extern char banner[12];

GRAFT_AT_COMMIT() {
  memset(banner, 0, sizeof banner);
  memcpy(banner, "server 2.0", sizeof "server 2.0");
  return 0;
}
