// A generic list of void * values (as redis's adlist): it never knows what it holds.
#ifndef PERLIST_LIST_H
#define PERLIST_LIST_H

struct lnode {
  struct lnode* next;
  void* value;
};

struct list {
  struct lnode* head;
  unsigned long len;
};

struct list* list_create(void);
void list_add(struct list* l, void* value);

#endif
