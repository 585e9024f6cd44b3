// Test target: a member whose type the release changes in a way no default
// transformer converts (redis 7.0.6's array that becomes a pointer,
// beanstalkd 1.12's body): v1 keeps the tag in the entry (char[8]), v2
// points to it (const char *). vN/main.c defines VERSION. The same source
// in every version (-DRENAMED: the release also renames `flags`). One
// command per line on stdin:
//   make ID TAG   the entry: "made"
//   r             "ID TAG"
//   v             the version
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_lines.h"

struct entry {
  int id;
#if VERSION >= 2
  const char* tag;  // v2: a pointer to it
#else
  char tag[8];
#endif
#ifdef RENAMED
  int mask;   // built with -DRENAMED: flags renamed
#else
  int flags;  // 16 bytes in v1: one entry per block (24 usable), not an array of two
#endif
};

struct entry* current;

static void handle(const char* line) {
  int id = 0;
  char tag[8] = "";
  if (sscanf(line, "make %d %7s", &id, tag) == 2) {
    struct entry* e = calloc(1, sizeof *e);
    e->id = id;
#if VERSION >= 2
    e->tag = strdup(tag);
#else
    memcpy(e->tag, tag, sizeof tag);
#endif
    current = e;
    printf("made\n");
  } else if (strcmp(line, "r") == 0 && current) {
    printf("%d %s\n", current->id, current->tag);
  } else {
    ANSWER_VERSION_OR_UNKNOWN(line);
    return;
  }
  fflush(stdout);
}

int main(void) { return serve_lines(handle); }
