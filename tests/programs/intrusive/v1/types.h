// An intrusive list, Linux-style: each item embeds its link, the list's
// head is a global, and the code gets from a link to its item with
// container_of. The traversal sees only struct list_head pointers; the
// --transform file declares where they lead (directives/list.c).
#ifndef INTRUSIVE_TYPES_H
#define INTRUSIVE_TYPES_H
#include <stddef.h>

struct list_head {
  struct list_head *next, *prev;
};

struct item {
  long key;
  struct list_head link;
  long value;
};

#define item_of(l) ((struct item*)((char*)(l) - offsetof(struct item, link)))
#endif
