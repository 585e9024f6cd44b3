// Benchmark target for data transformation: N list nodes of a struct the
// next version grows, reachable from one global. Built with graft-cc.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct item {  // 48 bytes; malloc gives 56, room to grow by 8 in place
  struct item* next;
  long key;
  int count;
  char tag[20];
  double score;
};

struct item* items;

__attribute__((noinline)) long sum(void) {
  long s = 0;
  for (struct item* i = items; i; i = i->next) s += i->key + i->count;
  return s;
}

__attribute__((noinline)) static void build(long n) {
  for (long k = 0; k < n; k++) {
    struct item* i = calloc(1, sizeof *i);
    i->key = k;
    i->count = (int)(k % 7);
    i->next = items;
    items = i;
  }
}

int main(int argc, char** argv) {
  build(argc > 1 ? atol(argv[1]) : 1000);
  printf("ready %ld\n", sum());
  fflush(stdout);
  char line[16];
  while (fgets(line, sizeof line, stdin)) {
    printf("%ld\n", sum());
    fflush(stdout);
  }
  return 0;
}
