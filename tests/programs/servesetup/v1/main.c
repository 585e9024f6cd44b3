// Test target for start-up state set by the service function itself,
// before its loop, through the address main passes it (beanstalkd's
// srvserve(&srv) sets `s->conns.setpos = conn_setpos` before it serves).
// v2 adds a member that serve() sets there: the running process, already
// in serve()'s loop, never sets it. One command per line on stdin: any line
// is answered with the count of lines served (v2: through the new member).
#include <stdio.h>
#include <unistd.h>

struct counters {
  long served;
};

struct server {
  int fd;
  struct counters c;
};

static struct server srv;

// Not static: its parameter is a parameter (clang would fold the one
// caller's &srv into a static function).
void serve(struct server* s);

__attribute__((noinline)) void serve(struct server* s) {
  s->fd = 0;
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    s->c.served++;
    printf("%ld\n", s->c.served);
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
