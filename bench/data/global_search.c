// Benchmark target for the search for pointers into a global that gets
// new storage (bench/data/global_search.sh): struct settings grows in
// VERSION 2, so `cfg` moves, and a static table points into it. The
// process holds TOUCHED MiB of heap it wrote (no pointers in it) and
// RESERVED MiB it allocated and never touched. Commands: p (version and
// the port through the table), q (exit).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION 1
#endif

struct settings {
  int port;
#if VERSION == 2
  long id;
#endif
  int verbose;
};
struct settings cfg = {.port = 8080};
static int *options[] = {&cfg.port, &cfg.verbose};

__attribute__((noinline)) static int version(void) { return VERSION; }

// Where the blocks are kept: the compiler may not drop an allocation it can see is never used.
char *volatile blocks[2];

int main(int argc, char **argv) {
  const size_t touched = argc > 1 ? strtoull(argv[1], NULL, 10) << 20 : 0;
  const size_t reserved = argc > 2 ? strtoull(argv[2], NULL, 10) << 20 : 0;
  char *written = malloc(touched + 1), *untouched = malloc(reserved + 1);
  memset(written, 1, touched);
  blocks[0] = written;
  blocks[1] = untouched;
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin) && line[0] != 'q') {
    printf("%d %d %d\n", version(), *options[0], cfg.verbose);
    fflush(stdout);
  }
  free(written);
  free(untouched);
  return 0;
}
