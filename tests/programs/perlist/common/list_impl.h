#include "list.h"

#include <stdlib.h>

struct list* list_create(void) { return calloc(1, sizeof(struct list)); }

void list_add(struct list* l, void* value) {
  struct lnode* n = malloc(sizeof *n);
  n->value = value;
  n->next = l->head;
  l->head = n;
  l->len++;
}
