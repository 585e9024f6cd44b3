// Test target: an I/O wrapper whose void * says whose it is (beanstalkd's
// Socket.x: each Conn's points to the Conn, the Server's to the Server).
// graft-cc's records say struct sock.x holds a struct conn or a struct
// server, but not which for each object, and struct conn changes: graft
// diff asked for a declaration no line can give. Now each value is checked
// at the commit to be an object the typed pointers reach. One command per
// line:
//   a       accepts a connection (kept in conns[])
//   h       accepts one kept only by the pending sock (its conn reached through sock.x alone)
//   s       the sum over the connections, through each sock's x      v   the version
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define VERSION 1

struct sock {
  void *x;  // the struct conn or struct server this sock belongs to
  int fd;
};

struct conn {
  struct sock sock;
  long served;
};

struct server {
  struct sock sock;
  int port;
};

struct server srv = {{0, 3}, 11300};
static struct conn *conns[16];
static int nconns;
static struct sock *pending;  // a sock whose conn nothing else points to

__attribute__((noinline)) static struct conn *accept_conn(long served) {
  struct conn *c = calloc(1, sizeof *c);
  c->sock.x = c;
  c->sock.fd = 10 + nconns;
  c->served = served;
  return c;
}

__attribute__((noinline)) static long sum(void) {
  long total = 0;
  for (int i = 0; i < nconns; ++i) total += ((struct conn *)conns[i]->sock.x)->served;
  if (pending) total += ((struct conn *)pending->x)->served;
  return total + ((struct server *)srv.sock.x)->port;
}

__attribute__((noinline)) static int version(void) { return VERSION; }

int main(void) {
  srv.sock.x = &srv;
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (line[0] == 'a' && nconns < 16) {
      conns[nconns] = accept_conn(nconns + 1);
      ++nconns;
      printf("accepted\n");
    } else if (line[0] == 'h') {
      pending = &accept_conn(100)->sock;
      printf("pending\n");
    } else if (line[0] == 's') {
      printf("%ld\n", sum());
    } else {
      printf("%d\n", version());
    }
    fflush(stdout);
  }
  return 0;
}
