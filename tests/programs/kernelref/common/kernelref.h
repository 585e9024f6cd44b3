// Test target: data the kernel remembers. epoll's data holds each
// connection's address (as beanstalkd's and nginx's do), and the kernel
// hands it back as it was given: where the object moves, graft must set it
// again (EPOLL_CTL_MOD). The connection grows in v2 (vN/main.c defines
// VERSION), a member inserted before `served`; the server, a global that
// holds its listener by value, grows with it (new storage). The same source
// in every version. Built with -DNO_ROOM, a connection has no room to grow
// in place (it must move); with -DUNRECORDED_DATA, the data words are copied
// in by memcpy, which graft-cc's records do not see.
// One command per line on stdin:
//   open     a connection the kernel watches and `conns` holds too
//   hide     a connection only the kernel remembers
//   once     one only the kernel remembers, watched EPOLLONESHOT: a ping and
//            a poll fire it, and the kernel hands its word back no more
//   listen   the server's listener, watched with its address (inside `srv`)
//   orphan   the last connection's descriptor is duplicated and the one its
//            watch was registered under closed (the watch lives on)
//   share    a child process is forked that holds the epoll instance too
//   ring     an io_uring instance ("ring", or "no ring" where the kernel has none)
//   ping     a write to every connection's eventfd (by descriptor)
//   poll     what epoll says is ready, each through its data word:
//            "N ready, served S" (S: what those connections served in all)
//   r        what each connection of `conns` served
//   l        what the listener served
//   e        the epoll instance's descriptor
//   v        the version
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "eventfds.h"
#include "serve_lines.h"

struct conn {
  int fd;
#if VERSION >= 2
  long bytes;  // v2: the connections' `served` moves
#endif
  long served;
  long spare;
};

struct server {
  int epfd;
  struct conn listener;
};

struct server srv;
struct conn* conns[16];
int nconns;
int fds[32];  // every watched descriptor, for ping
int nfds;

static void watch(struct conn* c, unsigned flags) {
  c->fd = eventfd(0, EFD_NONBLOCK);
  fds[nfds++] = c->fd;
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN | flags;
#ifdef UNRECORDED_DATA
  memcpy(&ev.data, &c, sizeof c);
#else
  ev.data.ptr = c;
#endif
  epoll_ctl(srv.epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static struct conn* new_conn(unsigned flags) {
#ifdef NO_ROOM
  struct conn* c = calloc(1, sizeof *c);
#else
  struct conn* c = calloc(1, 40);  // room to grow in place (one struct: a block of two would be an array)
#endif
  watch(c, flags);
  return c;
}

static void poll_ready(void) {
  struct epoll_event events[32];
  const int n = epoll_wait(srv.epfd, events, 32, 0);
  long served = 0;
  for (int i = 0; i < n; ++i) {
    struct conn* c = events[i].data.ptr;
    uint64_t count;
    if (read(c->fd, &count, sizeof count) == sizeof count) c->served++;
    served += c->served;
  }
  printf("%d ready, served %ld\n", n, served);
}

static void handle(const char* line) {
  if (strcmp(line, "open") == 0 && nconns < 16 && nfds < 32) {
    conns[nconns++] = new_conn(0);
    printf("opened\n");
  } else if (strcmp(line, "hide") == 0 && nfds < 32) {
    new_conn(0);
    printf("hidden\n");
  } else if (strcmp(line, "once") == 0 && nfds < 32) {
    new_conn(EPOLLONESHOT);
    ping_eventfds(fds + nfds - 1, 1);
    poll_ready();
  } else if (strcmp(line, "listen") == 0 && nfds < 32) {
    watch(&srv.listener, 0);
    printf("listening\n");
  } else if (strcmp(line, "orphan") == 0 && nconns > 0) {
    struct conn* c = conns[nconns - 1];
    const int copy = dup(c->fd);
    for (int i = 0; i < nfds; ++i)
      if (fds[i] == c->fd) fds[i] = copy;
    close(c->fd);
    c->fd = copy;
    printf("orphaned\n");
  } else if (strcmp(line, "share") == 0) {
    const pid_t parent = getpid();
    const pid_t child = fork();
    if (child == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // it ends with the test's process
      if (getppid() != parent) _exit(0);
      for (;;) pause();
    }
    printf("shared with %d\n", (int)child);
  } else if (strcmp(line, "ping") == 0) {
    ping_eventfds(fds, nfds);
    printf("pinged\n");
  } else if (strcmp(line, "poll") == 0) {
    poll_ready();
  } else if (strcmp(line, "ring") == 0) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    printf("%s\n", syscall(__NR_io_uring_setup, 4, &params) >= 0 ? "ring" : "no ring");
  } else if (strcmp(line, "e") == 0) {
    printf("%d\n", srv.epfd);
  } else if (strcmp(line, "l") == 0) {
    printf("%ld\n", srv.listener.served);
  } else if (strcmp(line, "r") == 0) {
    char out[256] = "";
    for (int i = 0; i < nconns; ++i)
      snprintf(out + strlen(out), sizeof out - strlen(out), "%s%ld", i ? " " : "", conns[i]->served);
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
  return serve_lines(handle);
}
