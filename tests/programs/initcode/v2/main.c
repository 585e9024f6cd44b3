// Test target for update-time code (graft diff --transform with GRAFT_INIT,
// GRAFT_RERUN, GRAFT_ON_UPDATE): threads idle in blocking calls (a reader
// on a pipe, an acceptor on a socket) and the main thread answering
// commands on stdin. v2 adds state its start-up sets, which a live update
// must set too (update-time code).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int pipe_fds[2], listen_fd;
static struct sockaddr_un address;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int jobs, accepted;
static char read_outcome[32] = "waiting", accept_outcome[32] = "waiting";
static char spin_path[200];  // the main thread spins while this file exists

// New in v2: state start-up sets.
static char* custom_hdrs;  // the first line of the file argv[1] names
static int squares[8];
static int table_ready;
static int ticks;  // commands handled; util.c has a static of that name too
int log_event(const char* what);  // util.c
extern char last_event[64];

static void* reader(void* arg) {
  (void)arg;
  for (;;) {
    char c;
    ssize_t n = read(pipe_fds[0], &c, 1);
    pthread_mutex_lock(&lock);
    jobs += n == 1;
    snprintf(read_outcome, sizeof read_outcome, "%s", n == 1 ? "ok" : (n < 0 && errno == EINTR ? "EINTR" : "wrong"));
    pthread_mutex_unlock(&lock);
    if (n != 1) return NULL;
  }
}

static void* acceptor(void* arg) {
  (void)arg;
  for (;;) {
    int fd = accept(listen_fd, NULL, NULL);
    pthread_mutex_lock(&lock);
    accepted += fd >= 0;
    snprintf(accept_outcome, sizeof accept_outcome, "%s", fd >= 0 ? "ok" : (errno == EINTR ? "EINTR" : "wrong"));
    pthread_mutex_unlock(&lock);
    if (fd < 0) return NULL;
    close(fd);
  }
}

static char* read_setting(const char* path) {
  char text[128] = {0};
  int fd = open(path, O_RDONLY);
  if (fd < 0) return NULL;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return NULL;
  text[strcspn(text, "\n")] = 0;
  return strdup(text);
}

// noinline: a live update re-runs it (GRAFT_RERUN), so it needs code of its own.
__attribute__((noinline)) static void setup_table(void) {
  for (int i = 0; i < 8; i++) squares[i] = i * i;
  table_ready = 1;
}

// Not static: its parameters stay as they are in both versions (main does not change).
void startup(int argc, char** argv) {
  custom_hdrs = read_setting(argc > 1 ? argv[1] : "/dev/null");
  setup_table();
  log_event("started");
  if (pipe(pipe_fds) != 0) _exit(1);
  listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
  address.sun_family = AF_UNIX;
  snprintf(address.sun_path, sizeof address.sun_path, "/tmp/graft-initcode-%d", getpid());
  unlink(address.sun_path);
  if (bind(listen_fd, (struct sockaddr*)&address, sizeof address) != 0 || listen(listen_fd, 4) != 0) _exit(1);
  pthread_t t;
  pthread_create(&t, NULL, acceptor, NULL);  // first: the first idle thread after main
  pthread_create(&t, NULL, reader, NULL);
}

const char* describe(void) {
  static char text[256];
  snprintf(text, sizeof text, "v2 hdrs=%s squares=%d ready=%d event=%s", custom_hdrs ? custom_hdrs : "(null)",
           squares[7], table_ready, last_event);
  return text;
}

static void handle(const char* line) {
  ticks++;
  if (strncmp(line, "wake", 4) == 0) {
    if (write(pipe_fds[1], "x", 1) != 1) _exit(1);
    printf("woken\n");
  } else if (strncmp(line, "connect", 7) == 0) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr*)&address, sizeof address) != 0) _exit(1);
    close(fd);
    printf("connected\n");
  } else if (strncmp(line, "jobs", 4) == 0) {
    pthread_mutex_lock(&lock);
    printf("read %d %s accept %d %s\n", jobs, read_outcome, accepted, accept_outcome);
    pthread_mutex_unlock(&lock);
  } else if (strncmp(line, "spin ", 5) == 0) {
    snprintf(spin_path, sizeof spin_path, "%s", line + 5);
    spin_path[strcspn(spin_path, "\n")] = 0;
    printf("spinning\n");
  } else {
    printf("%s\n", describe());
  }
  fflush(stdout);
}

// The main thread busy (not in a system call, but to look at the file
// every millisecond) while the file `spin PATH` named exists, 30 s at most,
// outside the code an update replaces.
static void spin_if_asked(void) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long checked = -1;
  while (spin_path[0]) {
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (ms == checked) continue;
    checked = ms;
    if (ms >= 30000 || access(spin_path, F_OK) != 0) spin_path[0] = 0;
  }
}

int main(int argc, char** argv) {
  startup(argc, argv);
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    handle(line);
    spin_if_asked();
  }
  unlink(address.sun_path);
  return 0;
}
