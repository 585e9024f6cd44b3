// Test target for a union no member says the live member of (an I/O
// abstraction whose live member is chosen by its function pointers, like
// libevent's struct event): graft diff can only offer GRAFT_OPAQUE for it.
// v2 grows struct item, which the union may point to.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct item {
  int key;
  int value;
  long seen;  // new in v2
};

struct io {
  int (*read)(struct io*);
  union {
    struct item* record;
    long fd;
  } u;
};

static int read_record(struct io* io) {
  io->u.record->seen++;
  return io->u.record->value;
}
static struct io source;

int main(void) {
  struct item* it = malloc(sizeof *it);
  it->key = 1;
  it->value = 7;
  source.read = read_record;
  source.u.record = it;
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    printf("%d\n", source.read(&source));
    fflush(stdout);
  }
  return 0;
}
