// The module: a table of entries in the module's own static storage.
#include <stdio.h>
#include <stdlib.h>

struct entry {
  int key;
  int value;
  struct entry *next;
};

static struct entry *table[16];
int mod_stored;  // exported: reached through the module's GOT

int mod_version(void) { return 1; }

int mod_put(int key, int value) {
  struct entry *e = malloc(sizeof *e);
  if (!e) return -1;
  e->key = key;
  e->value = value;
  e->next = table[key & 15];
  table[key & 15] = e;
  return ++mod_stored;
}

int mod_get(int key, char *out, int size) {
  for (struct entry *e = table[key & 15]; e; e = e->next)
    if (e->key == key) return snprintf(out, size, "v%d %d=%d", mod_version(), key, e->value);
  return snprintf(out, size, "v%d %d missing", mod_version(), key);
}
