// Types of the facts test program, version 2: struct job and struct conn grow. No pointer typed as struct job
// or struct conn exists anywhere: a generic list holds the jobs as void *
// values, an event loop holds the connections as void * client data, and
// nothing is declared to graft (graft-cc's records say what they hold).
#ifndef FACTS_TYPES_H
#define FACTS_TYPES_H

#define VERSION 2

struct job {  // 16 bytes: malloc gives it 24, v2's grows in place
  long id;
  int weight;
  long priority;  // v2
};

struct conn {  // 16 bytes
  int fd;
  long served;
  char name[8];  // v2
};

// Written only by code not built with graft-cc, when such code is linked in (foreign/stash.c).
struct stash {
  void* item;
};

#endif
