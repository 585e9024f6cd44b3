// Test target for static archives (issue 13): the counting lives in
// libtally.a, linked as `ar rcs libtally.a tally.o names.o unused.o` then
// `graft-cc main.o libtally.a` (or -L lib -ltally). Three workers score all
// the time; the main thread says "ready PID", then answers one command per
// line:
//   score N   score(N)
//   calls     how many scores the tally counted (the workers' included)
//   largest   the largest N scored (-1: this version does not track it)
//   name      the archive's other member, unchanged
// v2/ holds only what the next release changes (lib/tally.c): it is checked
// out over v1's tree, as a project moves from one release to the next.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/tally.h"

static void* work(void* arg) {
  (void)arg;
  const struct timespec pause = {0, 200000};
  for (;;) {
    score(1);
    nanosleep(&pause, NULL);
  }
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  tally_init();
  for (int i = 0; i < 3; ++i) {
    pthread_t thread;
    pthread_create(&thread, NULL, work, NULL);
  }
  printf("ready %d\n", getpid());
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    long n = 0;
    if (sscanf(line, "score %ld", &n) == 1) printf("%ld\n", score(n));
    else if (strncmp(line, "calls", 5) == 0) printf("%ld\n", tally_calls());
    else if (strncmp(line, "largest", 7) == 0) printf("%ld\n", tally_largest());
    else if (strncmp(line, "name", 4) == 0) printf("%s\n", tally_name());
    else printf("?\n");
  }
  return 0;
}
