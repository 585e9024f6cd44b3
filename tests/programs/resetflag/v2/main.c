// Test target for a flag that is not a once-flag (redis's activeExpireCycle
// and its timelimit_exit): cycle() tests limit_hit, clears it, and sets it
// again when a cycle runs long, every call. v2 adds a member to struct
// stats that cycle() sets: code that runs every call sets it, so graft diff
// has nothing to refuse (the old code's value is set again at the next
// cycle), however the flag stands in the running process.
//   cycle N   one cycle of N steps (over 3 sets the flag)
//   v         the version
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

struct stats {
  long cycles;
  long last_steps;  // new in v2, set by every cycle
};

static struct stats stats;
static int limit_hit;  // set and cleared every call: not a once-flag

__attribute__((noinline)) static int cycle(int steps) {
  if (limit_hit) stats.cycles += 2;
  limit_hit = 0;
  stats.cycles++;
  stats.last_steps = steps;
  if (steps > 3) limit_hit = 1;
  return limit_hit;
}

__attribute__((noinline)) static int version(void) { return 2; }

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "cycle", 5) == 0) printf("%d %ld %ld\n", cycle(atoi(line + 6)), stats.cycles, stats.last_steps);
    else printf("%d\n", version());
    fflush(stdout);
  }
  return 0;
}
