// Test target: main's loop never returns and keeps values no DWARF local
// names, each computed once before the loop: the bound of an inner loop the
// compiler hoisted (3 * slots(), in a callee-saved register) and the result
// of a call. The next release changes the loop, so main's thread must move
// into it at its wait, and those values can only come from the old frame:
// the old code computed them the same way, from the same call.
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
  configured = argc > 1 ? atoi(argv[1]) : 1;
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
