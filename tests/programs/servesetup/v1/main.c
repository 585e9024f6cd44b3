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

int main(void) {
  serve(&srv);
  return 0;
}
