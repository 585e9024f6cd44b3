// Test target: data the kernel remembers. epoll's data holds each
// connection's address (as beanstalkd's and nginx's do), and the kernel
// hands it back as it was given: graft cannot rewrite it. Both structs grow
// in v2 (vN/main.c defines VERSION): the server is a global (new storage),
// each connection has room to grow in place. The same source in every version.
// One command per line on stdin:
//   open     a connection the kernel watches and `conns` holds too
//   hide     a connection only the kernel remembers
//   listen   the server's own eventfd, watched with the server's address
//   ping     a write to every connection of `conns` (and the server's, if listening)
//   poll     what epoll says is ready, each taken through its data: "N ready"
//   r        what each connection of `conns` served
//   v        the version
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "serve_lines.h"

struct server {
  int epfd;
  int wake_fd;
  long woken;
#if VERSION >= 2
  long started;  // v2
#endif
};

struct conn {
  int fd;
  long served;
#if VERSION >= 2
  long bytes;  // v2
#endif
};

struct server srv;
struct conn* conns[16];
int nconns;

static void watch(int fd, void* data) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.ptr = data;
  epoll_ctl(srv.epfd, EPOLL_CTL_ADD, fd, &ev);
}

static struct conn* watched_conn(void) {
  struct conn* c = calloc(1, 24);  // room to grow in place (one struct: a block of two would be an array)
  c->fd = eventfd(0, EFD_NONBLOCK);
  watch(c->fd, c);
  return c;
}

static void wake(int fd) {
  uint64_t one = 1;
  if (write(fd, &one, sizeof one) != sizeof one) abort();
}

__attribute__((noinline)) static void handle(const char* line) {
  if (strcmp(line, "open") == 0 && nconns < 16) {
    conns[nconns++] = watched_conn();
    printf("opened\n");
  } else if (strcmp(line, "hide") == 0) {
    watched_conn();
    printf("hidden\n");
  } else if (strcmp(line, "listen") == 0) {
    watch(srv.wake_fd, &srv);
    printf("listening\n");
  } else if (strcmp(line, "ping") == 0) {
    for (int i = 0; i < nconns; ++i) wake(conns[i]->fd);
    wake(srv.wake_fd);
    printf("pinged\n");
  } else if (strcmp(line, "poll") == 0) {
    struct epoll_event events[32];
    const int n = epoll_wait(srv.epfd, events, 32, 0);
    for (int i = 0; i < n; ++i) {
      uint64_t count;
      if (events[i].data.ptr == &srv) {
        if (read(srv.wake_fd, &count, sizeof count) == sizeof count) srv.woken++;
        continue;
      }
      struct conn* c = events[i].data.ptr;
      if (read(c->fd, &count, sizeof count) == sizeof count) c->served++;
    }
    printf("%d ready\n", n);
  } else if (strcmp(line, "r") == 0) {
    char out[256] = "";
    for (int i = 0; i < nconns; ++i) snprintf(out + strlen(out), sizeof out - strlen(out), "%s%ld", i ? " " : "", conns[i]->served);
    printf("%s\n", out);
  } else if (strcmp(line, "v") == 0) {
    printf("%d\n", VERSION);
  } else {
    printf("?\n");
  }
  fflush(stdout);
}

int main(void) {
  srv.epfd = epoll_create1(0);
  srv.wake_fd = eventfd(0, EFD_NONBLOCK);
  return serve_lines(handle);
}
