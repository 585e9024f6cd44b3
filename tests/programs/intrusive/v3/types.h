// An intrusive list, Linux-style: each item embeds its link, the list's
// head is a global, and the code gets from a link to its item with
// container_of. v3: a member is inserted before the link, which moves from
// offset 8 to 16 (the pointers into the items would have to follow it).
#ifndef INTRUSIVE_TYPES_H
#define INTRUSIVE_TYPES_H
#include <stddef.h>

struct list_head {
  struct list_head *next, *prev;
};

struct item {
  long key;
  long stamp;  // v3: the link moves
  struct list_head link;
  long value;
};

#define item_of(l) ((struct item*)((char*)(l) - offsetof(struct item, link)))
#endif
