// A compute loop with an update point in it, the worst case for graft-cc's
// update-point barriers (bench/update_point_cost.py): after the barriers
// the loop's induction variables are no longer known to the compiler across
// the update point. Prints a hash of N iterations (argv[1]).
#include <graft/graft.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned char data[4096];

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 1000000;
  for (int k = 0; k < 4096; k++) data[k] = (unsigned char)(k * 7 + 3);
  unsigned long hash = 5381;
  long pos = 0, weight = 0;
  for (long i = 0; i < n; i++) {
    graft_update_point();
    hash = hash * 33 + data[pos] + (unsigned long)weight;
    pos = (pos + 1) & 4095;
    weight += 3;
  }
  printf("%lx\n", hash);
  return 0;
}
