// Test target: threads blocked in system calls while graft updates the
// process. Each records how its call ended; none may see EINTR or a changed
// result. One waits in recv() on a socket with a receive timeout, a call
// Linux fails with EINTR after any stop (signal(7)), as tinyproxy's do. The main thread itself blocks in read() on stdin, where graft runs
// its injected system calls.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int pipe_fds[2], event_fd, listen_fd, timed_fds[2];
static struct sockaddr_un address;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int signalled;
static char outcome[6][32];  // read, accept, epoll, futex, sleep, timed recv

static void record(int slot, const char* text) {
  pthread_mutex_lock(&lock);
  snprintf(outcome[slot], sizeof outcome[slot], "%s", text);
  pthread_mutex_unlock(&lock);
}

static void* reader(void* arg) {
  (void)arg;
  char c;
  ssize_t n = read(pipe_fds[0], &c, 1);
  record(0, n == 1 && c == 'x' ? "ok" : (n < 0 && errno == EINTR ? "EINTR" : "wrong"));
  return NULL;
}

static void* acceptor(void* arg) {
  (void)arg;
  int fd = accept(listen_fd, NULL, NULL);
  record(1, fd >= 0 ? "ok" : (errno == EINTR ? "EINTR" : "wrong"));
  return NULL;
}

static void* epoller(void* arg) {
  (void)arg;
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = event_fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, event_fd, &ev);
  int n = epoll_wait(ep, &ev, 1, -1);
  record(2, n == 1 ? "ok" : (n < 0 && errno == EINTR ? "EINTR" : "wrong"));
  return NULL;
}

static void* waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  int r = 0;
  while (!signalled && r == 0) r = pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
  record(3, r == 0 ? "ok" : "wrong");
  return NULL;
}

static void* sleeper(void* arg) {
  (void)arg;
  struct timespec t0, t1, d = {0, 400 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int r = nanosleep(&d, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  record(4, r != 0 ? (errno == EINTR ? "EINTR" : "wrong") : (ms >= 400 ? "ok" : "short"));
  return NULL;
}

static void* timed_receiver(void* arg) {
  (void)arg;
  struct timeval timeout = {60, 0};
  setsockopt(timed_fds[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  char c;
  ssize_t n = recv(timed_fds[0], &c, 1, 0);
  record(5, n == 1 && c == 'y' ? "ok" : (n < 0 && errno == EINTR ? "EINTR" : "wrong"));
  return NULL;
}

int version(void) { return 2; }

int main(void) {
  if (pipe(pipe_fds) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, timed_fds) != 0) return 1;
  event_fd = eventfd(0, 0);
  listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
  address.sun_family = AF_UNIX;
  snprintf(address.sun_path, sizeof address.sun_path, "/tmp/graft-syscalls-%d", getpid());
  unlink(address.sun_path);
  if (bind(listen_fd, (struct sockaddr*)&address, sizeof address) != 0 || listen(listen_fd, 1) != 0) return 1;
  for (int i = 0; i < 6; i++) snprintf(outcome[i], sizeof outcome[i], "waiting");
  void* (*threads[])(void*) = {reader, acceptor, epoller, waiter, sleeper, timed_receiver};
  pthread_t t;
  for (int i = 0; i < 6; i++) pthread_create(&t, NULL, threads[i], NULL);
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "wake", 4) == 0) {
      if (write(pipe_fds[1], "x", 1) != 1 || write(timed_fds[1], "y", 1) != 1) return 1;
      int fd = socket(AF_UNIX, SOCK_STREAM, 0);
      if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0) return 1;
      uint64_t one = 1;
      if (write(event_fd, &one, sizeof one) != sizeof one) return 1;
      pthread_mutex_lock(&lock);
      signalled = 1;
      pthread_cond_signal(&cond);
      pthread_mutex_unlock(&lock);
      printf("woken\n");
    } else {
      pthread_mutex_lock(&lock);
      printf("v%d read=%s accept=%s epoll=%s futex=%s sleep=%s timed=%s\n", version(), outcome[0], outcome[1],
             outcome[2], outcome[3], outcome[4], outcome[5]);
      pthread_mutex_unlock(&lock);
    }
    fflush(stdout);
  }
  unlink(address.sun_path);
  return 0;
}
