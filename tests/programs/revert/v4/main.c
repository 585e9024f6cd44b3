// Test target for reverting data changes: a heap list of items whose struct
// the next versions change (v4, from v1: `value` becomes unsigned long; v2: a field added in front, so every other one
// moves, and `value` widened, in place: 48 -> 56 bytes; v3: `junk` removed).
// One command per line:
//   add N      appends N items (id i, value 10 * i)
//   set I V    sets the value of item I
//   dump       prints every item as id:value
//   v          prints the version
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct item {
  struct item* next;
  unsigned long value;  // v4: widened, and unsigned (a negative value does not survive)
  int id;
  short junk;
  char name[24];  // 48 bytes in v1: malloc gives 56, room for v2 to grow in place
};

static struct item* items;
static int count;

static void add(int n) {
  for (int k = 0; k < n; k++) {
    struct item* i = calloc(1, sizeof *i);
    i->id = count++;
    i->value = 10 * i->id;
    i->junk = 99;
    i->next = items;
    items = i;
  }
}

static int set(int id, long long value) {
  for (struct item* i = items; i; i = i->next)
    if (i->id == id) {
      i->value = (unsigned long)value;
      return 1;
    }
  return 0;
}

static void dump(void) {
  printf("items");
  for (const struct item* i = items; i; i = i->next) printf(" %d:%lld", i->id, (long long)i->value);
  printf("\n");
}

static int version(void) { return 4; }

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "add ", 4) == 0) {
      add(atoi(line + 4));
      printf("added\n");
    } else if (strncmp(line, "set ", 4) == 0) {
      char* end = NULL;
      const int id = (int)strtol(line + 4, &end, 10);
      printf(set(id, strtoll(end, NULL, 10)) ? "set\n" : "no such item\n");
    } else if (strncmp(line, "dump", 4) == 0) {
      dump();
    } else if (line[0] == 'v') {
      printf("%d\n", version());
    }
    fflush(stdout);
  }
  return 0;
}
