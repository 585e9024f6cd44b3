// Test target for intrusive containers (the same source in every version:
// vN/main.c defines VERSION, vN/types.h the layout). One command per line on stdin:
//   build N   N items at the list's tail (malloc'ed with room to grow)
//   dump      every item's key:value, in list order, then backwards
//   v         the version
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// types.h: the version's, included first by its main.c

struct list_head items = {&items, &items};

static void build(int n) {
  for (int i = 0; i < n; i++) {
    struct item* it = calloc(1, 48);
    it->key = i;
    it->value = 10 * i;
    it->link.prev = items.prev;
    it->link.next = &items;
    items.prev->next = &it->link;
    items.prev = &it->link;
  }
}

static void dump(void) {
  printf("items");
  for (struct list_head* l = items.next; l != &items; l = l->next) printf(" %ld:%ld", item_of(l)->key, item_of(l)->value);
  printf(" back");
  for (struct list_head* l = items.prev; l != &items; l = l->prev) printf(" %ld", item_of(l)->value);
  printf("\n");
}

int main(void) {
  printf("ready\n");
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (!strncmp(line, "build ", 6)) {
      build(atoi(line + 6));
      printf("built\n");
    } else if (!strncmp(line, "dump", 4)) {
      dump();
    } else {
      printf("%d\n", VERSION);
    }
    fflush(stdout);
  }
  return 0;
}
