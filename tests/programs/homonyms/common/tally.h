// tally.c of the homonyms test (see homonyms.h): a struct conn of its own,
// the same in every version.
#include <stdlib.h>

struct conn {
  long hits;
  long misses;
  long total;
};

// Struct conn's tag ID (heap_type_id("struct peer12402") == heap_type_id("struct conn")).
struct peer12402 {
  long seen;
};

void* peer_slot(void);

// An allocator called through a pointer: what it returns is not tagged.
void* (*tally_alloc)(size_t) = malloc;
void* tally_state;  // the tally, kept untyped
long peers;

void tally_hit(long n) {
  struct conn* t = tally_state;
  if (!t) {
    t = tally_alloc(sizeof *t);
    t->hits = t->misses = t->total = 0;
    tally_state = t;
  }
  t->hits += n;
  t->total += 2 * n;
  struct peer12402* p = peer_slot();
  p->seen += n;
  peers += p->seen;
}

long tally_total(void) { return tally_state ? ((struct conn*)tally_state)->total : 0; }
long peer_count(void) { return peers; }
