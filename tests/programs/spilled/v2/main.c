// Test target: main's loop never returns and keeps, across its wait, values
// it computed once before the loop from a call that fills two locals through
// their addresses (dropbear's `listensockets(listensocks, &maxsock)`): the
// count, spilled and reloaded every turn, and the bounds the compiler derived
// from it for a vectorised loop, in stack slots no DWARF local names. The next
// release changes the loop; main's thread moves into it at its wait, and those
// values come from the old frame, computed alike.
//
// v2 answers the largest descriptor too. One command per line on stdin; the
// answer is the sum over the filled descriptors, a checksum of the line, the
// count and the largest.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int configured = 3;

__attribute__((noinline)) size_t fill(int* fds, int* max) {
  const size_t n = (size_t)configured;
  for (size_t i = 0; i < n; i++) fds[i] = (int)i + 10;
  *max = 12;
  return n;
}

__attribute__((noinline)) long work(long a, long b, long c, long d) { return a + b * 2 + c * 3 + d * 4; }

int main(void) {
  char line[256];
  int fds[8], maxfd = -1;
  const size_t count = fill(fds, &maxfd);
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  for (;;) {
    if (!fgets(line, sizeof line, stdin)) break;
    long sum = 0;
    for (size_t i = 0; i < count; i++) sum += fds[i] * 7 + maxfd;
    long a = (long)strlen(line), b = a * 3, c = a ^ sum, d = sum - a, e = work(a, b, c, d), f = work(e, a, b, c);
    long g = work(f, e, d, c), h = work(g, f, e, d);
    printf("v2 %ld %ld %ld %d\n", sum, h % 1000, (long)count, maxfd);
    fflush(stdout);
  }
  return 0;
}
