// servesetup v2: serve() sets a new member of the server's counters, the
// function that answers, before its loop (see v1/main.c).
#include <stdio.h>
#include <unistd.h>

struct counters {
  long served;
  long (*answer)(long served);
};

struct server {
  int fd;
  struct counters c;
};

static struct server srv;

__attribute__((noinline)) static long plain(long served) { return served; }

// Not static: its parameter is a parameter (clang would fold the one
// caller's &srv into a static function).
void serve(struct server* s);

__attribute__((noinline)) void serve(struct server* s) {
  s->fd = 0;
  s->c.answer = plain;
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    s->c.served++;
    printf("%ld\n", s->c.answer(s->c.served));
    fflush(stdout);
  }
}

// Given the server's address before the loop, as redis's listenToPort(port,
// &server.cfd): it may write any of it, as far as graft can tell, but the
// store serve() makes is what a refusal names.
__attribute__((noinline)) void describe(struct server* s) { fprintf(stderr, "server on fd %d\n", s->fd); }

int main(void) {
  describe(&srv);
  serve(&srv);
  return 0;
}
