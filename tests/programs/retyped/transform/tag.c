// The tag, which v2 points to: kept in the patch's own memory (a transformer
// must not allocate), where it lives while the patch is applied.
#include <graft/graft.h>
#include <string.h>

struct entry {
  int id;
  const char* tag;
  int flags;
};

static char tags[16][8];
static int used;

GRAFT_TRANSFORM(entry, from, to) {
  if (used == 16) return;
  memcpy(tags[used], from->tag, sizeof tags[used]);
  to->tag = tags[used++];
}
