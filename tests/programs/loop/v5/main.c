// Test target for frames that continue in new code: worker threads that sit
// forever in one loop function, blocked in read() on their own pipe, never
// returning. One command per line on stdin:
//   poke N   sends a byte to worker N and waits for its answer
//   stats    prints the counters the workers keep
//   v        prints the version
// The versions differ only in what the loop's code depends on:
//   v2  struct config gains a field before `step` (the loop reads it at the
//       new offset) and struct stats one before `reads` (a retyped global,
//       new storage): the loop's code is equivalent for continuation
//   v3  the loop's body itself changes: not equivalent
//   v4, v5  the constant the loop adds changes (20, 30): code only
// Each worker also keeps a `struct job` only its own frame points to (kept in
// a register or a stack slot over the read); v2 swaps its counter and its
// total: the continued frame is a root, its job transformed.
// Answers to poke: the worker's count of requests so far.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 3
#define BONUS 30

struct config {
  long limit;
  long step;
};

struct stats {
  long reads;
  long sum;
};

struct job {
  long id;
  long count;
  long total;
};

struct config* config;
struct stats stats;
static int requests[WORKERS][2], answers[2];

// Never returns: each worker waits here for the whole life of the process.
static void* worker_loop(void* arg) {
  const int fd = (int)(long)arg;
  struct job* job = calloc(1, sizeof *job);
  __asm__ volatile("" : : "r"(job) : "memory");  // it escapes: a real heap object
  char c;
  for (;;) {
    ssize_t n = read(fd, &c, 1);
    if (n != 1) {
      if (n < 0 && errno == EINTR) continue;
      return NULL;
    }
    __atomic_add_fetch(&stats.reads, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&stats.sum, config->step + BONUS, __ATOMIC_RELAXED);
    job->count++;
    __asm__ volatile("" : : : "memory");  // two plain adds, not one vector add
    job->total += 100;
    c = (char)job->count;
    if (write(answers[1], &c, 1) != 1) return NULL;
  }
}

static void report(void) {
  printf("reads=%ld sum=%ld\n", __atomic_load_n(&stats.reads, __ATOMIC_RELAXED),
         __atomic_load_n(&stats.sum, __ATOMIC_RELAXED));
}

static int version(void) { return 5; }

static void setup(void) {
  config = malloc(sizeof *config);
  config->limit = 100;
  config->step = 5;
}

// main never returns either, and is the same in every version.
int main(void) {
  setup();
  if (pipe(answers) != 0) return 1;
  for (long i = 0; i < WORKERS; i++) {
    pthread_t t;
    if (pipe(requests[i]) != 0 || pthread_create(&t, NULL, worker_loop, (void*)(long)requests[i][0]) != 0) return 1;
  }
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    int n;
    char c = 1;
    if (sscanf(line, "poke %d", &n) == 1 && n >= 0 && n < WORKERS) {
      if (write(requests[n][1], &c, 1) != 1 || read(answers[0], &c, 1) != 1) return 1;
      printf("poked %d\n", c);
    } else if (strncmp(line, "stats", 5) == 0) {
      report();
    } else {
      printf("%d\n", version());
    }
    fflush(stdout);
  }
  return 0;
}
