// Test target (v4, and v5 its next release): as v1, but main sets what
// slots() reads by a store of its own (no call), then calls slots(). v5
// calls slots() first and sets it after: the same call with the same
// arguments, but before the store it depends on, so the bound v4 keeps is not
// the one v5's code would have (its value must not be carried over).
//
// Run as `prog N`; one command per line on stdin: "s" answers the sum over
// the hoisted bound, "v" the version.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const long weights[4] = {1, 10, 100, 1000};
static int configured;

__attribute__((noinline)) long weight(int i) { return weights[i & 3]; }

__attribute__((noinline)) int slots(void) { return configured; }

int main(int argc, char** argv) {
  char line[256];
  configured = argc * 5;
  const int n = slots();
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {
    long sum = 0;
    for (int i = 0; i < n * 3; i++) sum += weight(i);
    if (line[0] == 'v') printf("1\n");
    else printf("%ld\n", sum);
    fflush(stdout);
  }
  return 0;
}
