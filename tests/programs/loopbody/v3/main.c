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
// v3 is v2 plus a local that lives across the read, new, and set before the
// loop to a value the code computes: graft gives a new local only a
// constant initial value, so no thread can move into the new body there.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 3

static int requests[WORKERS][2], answers[2];
static long reported[WORKERS];
static long iterations;  // new in v2

// New in v2: called at the top of every iteration.
static void count_iteration(void) { __atomic_add_fetch(&iterations, 1, __ATOMIC_RELAXED); }

// Never returns: each worker waits here for the whole life of the process.
static void* worker_loop(void* arg) {
  const int fd = requests[(long)arg][0];
  long* const slot = &reported[(long)arg];
  // The worker's state lives in its frame: read() gets its address, so
  // DWARF knows its stack slot at every call.
  struct { long count; char c; } state = {0, 0};
  long bytes = (long)arg * 1000;  // new in v3, live across the read, computed
  for (;;) {
    count_iteration();
    ssize_t n = read(fd, &state.c, 1);
    if (n != 1) {
      if (n < 0 && errno == EINTR) continue;
      return NULL;
    }
    state.count++;
    bytes += n;
    if (bytes % 1000 == 999) printf("%ld bytes\n", bytes);
    const long shown = state.count * 10 + 2;  // a new local, dead before the next read
    __atomic_store_n(slot, shown, __ATOMIC_RELAXED);
    if (write(answers[1], &state.c, 1) != 1) return NULL;
  }
}

static int version(void) { return 3; }

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
