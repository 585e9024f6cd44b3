// Test target: beanstalkd's sockets. Each connection and the server hold a
// struct sock by value, whose void * x points back to its owner; epoll's
// data word is the sock's address. An idle connection is known only to the
// kernel: graft follows the word as a struct sock (graft-cc's records say
// that is all epoll's data holds), and the sock's x, which holds a struct
// conn or the server, as the struct conn when it is in the heap (the server
// lives only in its global). The connection grows in v2 (a member inserted
// before `served`; vN/main.c defines VERSION). The same source in every version.
// One command per line on stdin:
//   open     an idle connection, watched by epoll, held by nothing else
//   ping     a write to every watched descriptor
//   poll     "N ready, served S": each ready connection served once more
//   v        the version
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "eventfds.h"
#include "serve_lines.h"

struct sock {
  int fd;
  void* x;  // its connection, or the server
};

struct conn {
  struct sock sock;
#if VERSION >= 2
  long bytes;  // v2
#endif
  long served;
  long spare;
};

struct server {
  int epfd;
  struct sock sock;
  long woken;
};

struct server srv;
int fds[32];
int nfds;

static void watch(struct sock* s) {
  fds[nfds++] = s->fd;
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.ptr = s;
  epoll_ctl(srv.epfd, EPOLL_CTL_ADD, s->fd, &ev);
}

static void handle(const char* line) {
  if (strcmp(line, "open") == 0 && nfds < 32) {
    struct conn* c = calloc(1, 48);  // room to grow in place
    c->sock.fd = eventfd(0, EFD_NONBLOCK);
    c->sock.x = c;
    watch(&c->sock);
    printf("opened\n");
  } else if (strcmp(line, "ping") == 0) {
    ping_eventfds(fds, nfds);
    printf("pinged\n");
  } else if (strcmp(line, "poll") == 0) {
    struct epoll_event events[32];
    const int n = epoll_wait(srv.epfd, events, 32, 0);
    long served = 0;
    for (int i = 0; i < n; ++i) {
      struct sock* s = events[i].data.ptr;
      uint64_t count;
      if (read(s->fd, &count, sizeof count) != sizeof count) continue;
      if (s->x == &srv) {
        srv.woken++;
        continue;
      }
      struct conn* c = s->x;
      c->served++;
      served += c->served;
    }
    printf("%d ready, served %ld\n", n, served);
  } else if (strcmp(line, "v") == 0) {
    printf("%d\n", VERSION);
  } else {
    printf("?\n");
  }
  fflush(stdout);
}

// Not inlined into main, whose frame waits under the command loop's.
__attribute__((noinline)) static void listen_on(void) {
  srv.epfd = epoll_create1(0);
  srv.sock.fd = eventfd(0, EFD_NONBLOCK);
  srv.sock.x = &srv;
  watch(&srv.sock);
}

int main(void) {
  listen_on();
  return serve_lines(handle);
}
