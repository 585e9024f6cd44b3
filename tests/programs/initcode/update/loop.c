// Update-time code that never finishes.
#include <graft/graft.h>

GRAFT_ON_UPDATE() {
  for (volatile unsigned long i = 0;; i++) {
  }
  return 0;
}
