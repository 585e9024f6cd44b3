// Test target for what the types do not say (graft diff --transform with
// GRAFT_POINTS_TO and GRAFT_UNION_MEMBER): a generic hash table of void *
// values, a tagged union, a void * and an integer holding addresses. The same
// source in every version (types.h differs). One command per line on stdin:
//   build N   N items in the hash table, 8 cells (numbers, blobs, empty), 2 stashed blobs
//   dump      every value, in the same words in every version
//   bump      changes every value (and, from version 2, the new fields)
//   usable    malloc_usable_size of the blob stash.blob points to
//   odd       cell 2 gets a tag no directive names
//   free      frees everything
//   v         the version
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "types.h"

struct table table;
struct cell cells[8];
struct stash stash;

static struct blob* new_blob(long a, long b) {
  struct blob* x = malloc(sizeof *x);
  memset(x, 0, sizeof *x);
  x->a = a;
  x->b = b;
  return x;
}

static void put(const char* key, void* value) {
  unsigned h = 5381;
  for (const char* c = key; *c; c++) h = h * 33 + (unsigned char)*c;
  for (unsigned k = h % table.nslots;; k = (k + 1) % table.nslots)
    if (!table.slots[k].key) {
      table.slots[k].key = strdup(key);
      table.slots[k].value = value;
      table.used++;
      return;
    }
}

static void build(int n) {
  if (!table.slots) {
    table.nslots = 64;
    table.slots = calloc(table.nslots, sizeof *table.slots);
  }
  for (int i = 0; i < n && table.used + 1 < table.nslots; i++) {
    struct item* it = malloc(sizeof *it);
    memset(it, 0, sizeof *it);
    it->count = i;
    it->level = 100 + i;
    char key[16];
    snprintf(key, sizeof key, "k%u", table.used);
    put(key, it);
  }
  for (int i = 0; i < 8; i++) {
    if (cells[i].kind == KIND_BLOB) continue;
    cells[i].kind = i % 3 == 0 ? KIND_NUMBER : i % 3 == 1 ? KIND_BLOB : KIND_EMPTY;
    if (cells[i].kind == KIND_NUMBER) cells[i].u.number = 11 * i;
    if (cells[i].kind == KIND_BLOB) cells[i].u.blob = new_blob(i, 2 * i);
  }
  if (!stash.blob) stash.blob = new_blob(77, 78);
  if (!stash.handle) stash.handle = (uintptr_t)new_blob(88, 89);
}

static void print_blob(const struct blob* x) {
  printf(":%ld:%ld", (long)x->a, (long)x->b);
#if VERSION >= 2
  printf(":%s", x->label);
#endif
}

// Slots in key order, so every version prints the same.
static void dump(void) {
  printf("items");
  for (unsigned n = 0; n < table.used; n++) {
    char key[16];
    snprintf(key, sizeof key, "k%u", n);
    for (unsigned k = 0; k < table.nslots; k++)
      if (table.slots[k].key && !strcmp(table.slots[k].key, key)) {
        const struct item* it = table.slots[k].value;
        printf(" %s:%ld:%ld", key, (long)it->count, (long)it->level);
#if VERSION >= 2
        printf(":%d", it->weight);
#endif
      }
  }
  printf(" cells");
  for (int i = 0; i < 8; i++) {
    printf(" %d", i);
    if (cells[i].kind == KIND_NUMBER) printf(":n%ld", cells[i].u.number);
    if (cells[i].kind == KIND_BLOB) print_blob(cells[i].u.blob);
  }
  printf(" stash");
  if (stash.blob) print_blob(stash.blob);
  if (stash.handle) print_blob((const struct blob*)stash.handle);
  printf("\n");
}

static void bump_blob(struct blob* x) {
  x->a += 1000;
#if VERSION >= 2
  snprintf(x->label, sizeof x->label, "b%ld", (long)x->a);
#endif
}

static void bump(void) {
  for (unsigned k = 0; k < table.nslots; k++)
    if (table.slots[k].key) {
      struct item* it = table.slots[k].value;
      it->count += 1000;
#if VERSION >= 2
      it->weight = (int)it->count + it->level;
#endif
    }
  for (int i = 0; i < 8; i++) {
    if (cells[i].kind == KIND_NUMBER) cells[i].u.number++;
    if (cells[i].kind == KIND_BLOB) bump_blob(cells[i].u.blob);
  }
  if (stash.blob) bump_blob(stash.blob);
  if (stash.handle) bump_blob((struct blob*)stash.handle);
}

static void free_all(void) {
  for (unsigned k = 0; k < table.nslots; k++)
    if (table.slots[k].key) {
      free((void*)table.slots[k].key);
      free(table.slots[k].value);
    }
  free(table.slots);
  memset(&table, 0, sizeof table);
  for (int i = 0; i < 8; i++) {
    if (cells[i].kind == KIND_BLOB) free(cells[i].u.blob);
    memset(&cells[i], 0, sizeof cells[i]);
  }
  free(stash.blob);
  free((void*)stash.handle);
  memset(&stash, 0, sizeof stash);
}

__attribute__((noinline)) static void handle(const char* line) {
  if (!strncmp(line, "build ", 6)) {
    build(atoi(line + 6));
    printf("built\n");
  } else if (!strncmp(line, "dump", 4)) {
    dump();
  } else if (!strncmp(line, "bump", 4)) {
    bump();
    printf("bumped\n");
  } else if (!strncmp(line, "usable", 6)) {
    printf("%zu\n", stash.blob ? malloc_usable_size(stash.blob) : 0);
  } else if (!strncmp(line, "odd", 3)) {
    cells[2].kind = KIND_ODD;
    printf("odd\n");
  } else if (!strncmp(line, "free", 4)) {
    free_all();
    printf("freed\n");
  } else if (!strncmp(line, "v", 1)) {
    printf("%d\n", VERSION);
  }
  fflush(stdout);
}

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) handle(line);
  return 0;
}
