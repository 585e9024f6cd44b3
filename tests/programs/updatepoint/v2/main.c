// Test target for update points as transfer points: a worker that never
// waits in a call (it computes, and only yields) passes graft_update_point()
// at the top of its loop, the only place its thread can move into a new
// loop body. One command per line on stdin:
//   report   the worker's accumulator (it adds ADD each round) and rounds
//   v        the version
// (v2: the accumulator grows by 3 each round.)
#include <graft/graft.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ADD 3

static long reported_acc, reported_rounds;

__attribute__((noinline)) static void publish(long acc, long rounds) {
  __atomic_store_n(&reported_acc, acc, __ATOMIC_RELAXED);
  __atomic_store_n(&reported_rounds, rounds, __ATOMIC_RELAXED);
}

// Never returns; never waits in a call: its thread moves only at the update point.
static void* worker(void* arg) {
  (void)arg;
  long acc = 0, rounds = 0;
  for (;;) {
    graft_update_point();
    acc += ADD;
    rounds++;
    publish(acc, rounds);
    sched_yield();
  }
  return NULL;
}

__attribute__((noinline)) static int version(void) { return 2; }

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "report", 6) == 0)
      printf("%ld %ld\n", __atomic_load_n(&reported_acc, __ATOMIC_RELAXED),
             __atomic_load_n(&reported_rounds, __ATOMIC_RELAXED));
    else
      printf("%d\n", version());
    fflush(stdout);
  }
  return 0;
}
