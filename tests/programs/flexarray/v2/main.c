// Test target (issue 13): a struct ending in a flexible array member,
// allocated with room for its elements, whose elements point to the items
// the next version changes (v2: struct item gains a member; v3: the
// array's element type, struct resp, does). The header
// holds a pointer too, so that reading the elements as more headers would
// follow the wrong things. One command per line:
//   make N   a bundle of N responses, the i-th pointing to an item of value 10*i
//   sum      the items' values, summed through the bundle
//   extra    the new member of the items, summed (-1: this version has none)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct item {
  long extra;  // new, first: zero in the items made before the update, whose value moves
  long value;
};

struct resp {
  struct item* item;
  long tag;
};

struct bundle {
  struct bundle* next;
  int n;
  struct resp r[];
};

static struct bundle* bundle;

__attribute__((noinline)) static void make(int n) {
  struct bundle* b = malloc(sizeof *b + (size_t)n * sizeof b->r[0]);
  b->next = bundle;
  b->n = n;
  for (int i = 0; i < n; ++i) {
    b->r[i].item = calloc(1, sizeof *b->r[i].item);
    b->r[i].item->value = 10L * i;
    b->r[i].tag = i;
  }
  bundle = b;
}

__attribute__((noinline)) static long sum(void) {
  long total = 0;
  for (const struct bundle* b = bundle; b; b = b->next)
    for (int i = 0; i < b->n; ++i) total += b->r[i].item->value;
  return total;
}

__attribute__((noinline)) static long extra(void) {
  long total = 0;
  for (const struct bundle* b = bundle; b; b = b->next)
    for (int i = 0; i < b->n; ++i) total += b->r[i].item->extra;
  return total;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready %d\n", getpid());
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    int n = 0;
    if (sscanf(line, "make %d", &n) == 1) {
      make(n);
      printf("made\n");
    } else if (strncmp(line, "sum", 3) == 0) {
      printf("%ld\n", sum());
    } else if (strncmp(line, "extra", 5) == 0) {
      printf("%ld\n", extra());
    } else {
      printf("?\n");
    }
  }
  return 0;
}
