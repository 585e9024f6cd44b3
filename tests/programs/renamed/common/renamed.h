// Test target: a struct the next release renames (beanstalkd 1.12: struct
// tube -> struct Tube), reached from a global through a typed pointer. v2
// renames it and grows it: graft pairs the two names and converts the live
// tubes member by member. v3 renames it only. v4 points the connection to a
// new struct Tube while struct tube stays: no rename graft can pair.
// The same source in every version (vN/main.c defines TUBE, its layout).
// One command per line on stdin:
//   use ID JOBS   a new tube for the connection
//   r             the connection's tube: "ID JOBS"
//   v             the version
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve_lines.h"

struct conn {
  int fd;
  struct TUBE* use;
};

struct conn current;

__attribute__((noinline)) static void handle(const char* line) {
  int id = 0;
  long jobs = 0;
  if (sscanf(line, "use %d %ld", &id, &jobs) == 2) {
    struct TUBE* t = calloc(1, sizeof *t);
    t->id = id;
    t->jobs = jobs;
    current.use = t;
    printf("used\n");
  } else if (strcmp(line, "r") == 0) {
    printf("%d %ld\n", current.use ? current.use->id : -1, current.use ? current.use->jobs : -1);
  } else if (strcmp(line, "v") == 0) {
    printf("%d\n", VERSION);
  } else {
    printf("?\n");
  }
  fflush(stdout);
}

int main(void) { return serve_lines(handle); }
