// tally.c of the homonyms test (see homonyms.h): a struct conn of its own,
// the same in every version, made through an allocator table (hiredis's
// hiredisAllocFns): tagged while the table holds malloc, which graft diff
// trusts where nothing that runs writes the table (-DSET_ALLOCATORS: main
// calls the setter, and it cannot).
#include <stdlib.h>

struct conn {
  long hits;
  long misses;
  long total;
  void* owner;  // main.c's newest connection, which moves: followed by its tag
};

// main.c's struct conn's tag ID in v1: heap_type_id("struct peer52317", "8 seen@0") ==
// heap_type_id("struct conn", "16 fd@0 served@64").
struct peer52317 {
  long seen;
};

void* peer_slot(void);

struct allocators {
  void* (*alloc)(size_t);
  void (*release)(void*);
};
struct allocators tally_allocators = {malloc, free};

// Never called unless built with -DSET_ALLOCATORS.
void tally_set_allocators(void* (*alloc)(size_t), void (*release)(void*)) {
  tally_allocators.alloc = alloc;
  tally_allocators.release = release;
}

static void* tally_malloc(size_t size) { return tally_allocators.alloc(size); }

void* tally_state;  // the tally, kept untyped
long peers;

void tally_hit(long n, void* owner) {
  struct conn* t = tally_state;
  if (!t) {
    t = tally_malloc(sizeof *t);
    t->hits = t->misses = t->total = 0;
    tally_state = t;
  }
  t->hits += n;
  t->total += 2 * n;
  t->owner = owner;
  struct peer52317* p = peer_slot();
  p->seen += n;
  peers += p->seen;
}

long tally_total(void) { return tally_state ? ((struct conn*)tally_state)->total : 0; }
void* tally_owner(void) { return tally_state ? ((struct conn*)tally_state)->owner : NULL; }
long peer_count(void) { return peers; }
