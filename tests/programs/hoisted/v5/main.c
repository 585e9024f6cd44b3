// Test target, v4's next release: slots() before the store it reads (see
// v4). The loop answers with the version and counts the requests it served.
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
  const int n = slots();
  configured = argc * 5;
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  int served = 0;
  while (fgets(line, sizeof line, stdin)) {
    long sum = 0;
    for (int i = 0; i < n * 3; i++) sum += weight(i);
    if (line[0] == 'v') printf("2\n");
    else printf("v2 %ld %d\n", sum, ++served);
    fflush(stdout);
  }
  return 0;
}
