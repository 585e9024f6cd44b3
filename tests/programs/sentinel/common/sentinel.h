// Test target: a list whose head is a struct of its own kind held by value
// in its owner (beanstalkd's reserved jobs: each connection's `reserved` is
// a job, the sentinel of a circular list). The jobs' `prev` and `next` are
// typed pointers, and those of a connection's first and last job point into
// the middle of the connection. v2 (vN/main.c defines VERSION) grows the job
// (the links move inside it) and the connection (the sentinel moves inside
// it); built with -DNO_ROOM, each connection must move too; with -DFLEX, a
// job ends in a flexible array member (beanstalkd's body). The same source
// in every version.
// One command per line on stdin:
//   open       a connection
//   take C N   N more jobs reserved by connection C
//   dump       each connection's jobs, forwards and backwards: "0: 1 2 / 2 1; 1: 3 / 3"
//   v          the version
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_lines.h"

struct job {
  long id;
#if VERSION >= 2
  long deadline;  // v2: the links move
#endif
  struct job *prev, *next;
#ifdef FLEX
  char body[];  // -DFLEX: beanstalkd 1.11's job, its body after it
#endif
};

struct conn {
  int fd;
#if VERSION >= 2
  long bytes;  // v2: the sentinel moves
#endif
  struct job reserved;  // the sentinel: its prev and next are the list's ends
  long served;
};

struct conn* conns[8];
int nconns;
long next_id = 1;

static void open_conn(void) {
#ifdef NO_ROOM
  struct conn* c = calloc(1, sizeof *c);
#else
  struct conn* c = calloc(1, 56);  // room to grow in place (one struct: a block of two would be an array)
#endif
  c->fd = nconns;
  c->reserved.prev = c->reserved.next = &c->reserved;
  conns[nconns++] = c;
}

static void take(struct conn* c, int n) {
  for (int i = 0; i < n; i++) {
    struct job* j = calloc(1, 32);  // room to grow in place
    j->id = next_id++;
    j->prev = c->reserved.prev;
    j->next = &c->reserved;
    c->reserved.prev->next = j;
    c->reserved.prev = j;
  }
}

static void dump(void) {
  char out[1024] = "";
  for (int k = 0; k < nconns; k++) {
    struct conn* c = conns[k];
    snprintf(out + strlen(out), sizeof out - strlen(out), "%s%d:", k ? "; " : "", c->fd);
    for (struct job* j = c->reserved.next; j != &c->reserved; j = j->next)
      snprintf(out + strlen(out), sizeof out - strlen(out), " %ld", j->id);
    snprintf(out + strlen(out), sizeof out - strlen(out), " /");
    for (struct job* j = c->reserved.prev; j != &c->reserved; j = j->prev)
      snprintf(out + strlen(out), sizeof out - strlen(out), " %ld", j->id);
  }
  printf("%s\n", out);
}

static void handle(const char* line) {
  int c = 0, n = 0;
  if (strcmp(line, "open") == 0 && nconns < 8) {
    open_conn();
    printf("opened\n");
  } else if (sscanf(line, "take %d %d", &c, &n) == 2 && c >= 0 && c < nconns) {
    take(conns[c], n);
    printf("taken\n");
  } else if (strcmp(line, "dump") == 0) {
    dump();
  } else {
    ANSWER_VERSION_OR_UNKNOWN(line);
    return;
  }
  fflush(stdout);
}

int main(void) { return serve_lines(handle); }
