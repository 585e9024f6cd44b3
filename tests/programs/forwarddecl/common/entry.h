// The unit linked second: it defines struct entry (vN/table.c defines VERSION).
#include <stdlib.h>

#include "table.h"

struct entry {
  long key;
#if VERSION >= 2
  long hits;  // v2: `value` moves
#endif
  long value;
  struct entry* next;
};

struct entry* make_entry(long key, long value) {
  struct entry* e = calloc(1, sizeof *e);
  e->key = key;
  e->value = value;
  return e;
}

long value_of(const struct entry* e) { return e->value; }
