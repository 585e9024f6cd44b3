// Test target for named update points (GRAFT_UPDATE_POINT("name")): the
// worker of tests/programs/updatepoint, with two named update points in its
// loop. v2 adds a third between them: paired by order the points would not
// match (two against three), paired by name "top" and "published" keep
// their places and the worker moves at either. Commands as updatepoint's:
//   report   the worker's accumulator (it adds ADD each round), its rounds,
//            and the first round the new body counted (0 in v1)
//   wait N   waits until the worker did N rounds, then reports
//   v        the version
#include <graft/graft.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADD 1

static long seq;  // odd while publish writes
static long reported_acc, reported_rounds, first_round;

__attribute__((noinline)) static void publish(long acc, long rounds) {
  const long s = __atomic_load_n(&seq, __ATOMIC_RELAXED);
  __atomic_store_n(&seq, s + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  __atomic_store_n(&reported_acc, acc, __ATOMIC_RELAXED);
  __atomic_store_n(&reported_rounds, rounds, __ATOMIC_RELAXED);
  __atomic_store_n(&seq, s + 2, __ATOMIC_RELEASE);
}

// Never returns; never waits in a call: its thread moves only at the update point.
static void* worker(void* arg) {
  (void)arg;
  long acc = 0, rounds = 0;
  for (;;) {
    GRAFT_UPDATE_POINT("top");
    acc += ADD;
    rounds++;
    publish(acc, rounds);
    GRAFT_UPDATE_POINT("published");
    sched_yield();
  }
  return NULL;
}

// What publish wrote last, whole.
static void snapshot(long* acc, long* rounds, long* first) {
  for (;;) {
    const long s = __atomic_load_n(&seq, __ATOMIC_ACQUIRE);
    *acc = __atomic_load_n(&reported_acc, __ATOMIC_RELAXED);
    *rounds = __atomic_load_n(&reported_rounds, __ATOMIC_RELAXED);
    *first = __atomic_load_n(&first_round, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (!(s & 1) && __atomic_load_n(&seq, __ATOMIC_RELAXED) == s) return;
    sched_yield();
  }
}

__attribute__((noinline)) static int version(void) { return 1; }

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    long acc, rounds, first;
    if (strncmp(line, "wait ", 5) == 0)
      while (snapshot(&acc, &rounds, &first), rounds < atol(line + 5)) usleep(1000);
    if (strncmp(line, "wait ", 5) == 0 || strncmp(line, "report", 6) == 0) {
      snapshot(&acc, &rounds, &first);
      printf("%ld %ld %ld\n", acc, rounds, first);
    } else {
      printf("%d\n", version());
    }
    fflush(stdout);
  }
  return 0;
}
