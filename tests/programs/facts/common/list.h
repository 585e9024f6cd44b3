// A generic list of void * values (as redis's adlist): it never knows what it holds.
#ifndef FACTS_LIST_H
#define FACTS_LIST_H

struct lnode {
  struct lnode* next;
  void* value;
};

struct list {
  struct lnode* head;
  unsigned long len;
};

void list_add(struct list* l, void* value);
// The list's first node, as callers keep it (a handler's user data, as redis's addReplyDeferredLen).
void* list_first(struct list* l);

#endif
