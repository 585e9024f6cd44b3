#include <stdarg.h>
#include "list.h"

#include <stdlib.h>

void list_add(struct list* l, void* value) {
  struct lnode* n = malloc(sizeof *n);
  n->value = value;
  n->next = l->head;
  l->head = n;
  l->len++;
}

void* list_first(struct list* l) { return l->head; }

// A varargs helper: va_arg's lowering stores computed addresses into the
// compiler's own __va_list_tag, which graft never asks about.
long list_sum(int n, ...) {
  va_list ap;
  va_start(ap, n);
  long sum = 0;
  for (int i = 0; i < n; i++) sum += va_arg(ap, long);
  va_end(ap);
  return sum;
}
