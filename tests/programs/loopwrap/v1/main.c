// loopbody with the read() behind a function of the program: the loop waits
// in a call to wait_for_request(), which waits in read().
//
// Test target for moving a thread from the old body of a never-returning
// loop into the new one (on-stack replacement at a call both versions share).
// Worker threads sit forever in one loop function around read() on their own
// pipe; each keeps a counter in a local. One command per line on stdin:
//   wake     sends a byte to every worker at once, waits for their answers
//   report   prints each worker's counter and the version of the loop body
//            that counted last (count * 10 + version)
//   v        prints the version
// v2 changes the body: a call at the top of each iteration, a new local
// computed after the read, and another version number in what it reports.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 3

static int requests[WORKERS][2], answers[2];
static long reported[WORKERS];

// The loop waits through a function of its own, as servers do (a poll
// wrapper): the call to it is where a thread moves into the new body.
__attribute__((noinline)) static ssize_t wait_for_request(int fd, char* c) { return read(fd, c, 1); }

// Never returns: each worker waits here for the whole life of the process.
static void* worker_loop(void* arg) {
  const int fd = requests[(long)arg][0];
  long* const slot = &reported[(long)arg];
  // The worker's state lives in its frame: read() gets its address, so
  // DWARF knows its stack slot at every call.
  struct { long count; char c; } state = {0, 0};
  for (;;) {
    ssize_t n = wait_for_request(fd, &state.c);
    if (n != 1) {
      if (n < 0 && errno == EINTR) continue;
      return NULL;
    }
    state.count++;
    __atomic_store_n(slot, state.count * 10 + 1, __ATOMIC_RELAXED);
    if (write(answers[1], &state.c, 1) != 1) return NULL;
  }
}

static int version(void) { return 1; }

int main(void) {
  if (pipe(answers) != 0) return 1;
  for (long i = 0; i < WORKERS; i++) {
    pthread_t t;
    if (pipe(requests[i]) != 0 || pthread_create(&t, NULL, worker_loop, (void*)i) != 0) return 1;
  }
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    char c = 1;
    if (strncmp(line, "wake", 4) == 0) {
      for (int w = 0; w < WORKERS; w++)
        if (write(requests[w][1], &c, 1) != 1) return 1;
      for (int w = 0; w < WORKERS; w++)
        if (read(answers[0], &c, 1) != 1) return 1;
      printf("woken\n");
    } else if (strncmp(line, "report", 6) == 0) {
      for (int w = 0; w < WORKERS; w++) printf("%s%ld", w ? " " : "", __atomic_load_n(&reported[w], __ATOMIC_RELAXED));
      printf("\n");
    } else {
      printf("%d\n", version());
    }
    fflush(stdout);
  }
  return 0;
}
