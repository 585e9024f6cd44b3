// Test target: numbers a release wraps in a struct of one member (redis
// 7.0.3's io_threads_pending, an unsigned long per thread that becomes a
// struct threads_pending { unsigned long value; } aligned to a cache line,
// against false sharing): a global array of them and a member of a heap
// struct. The default transformer keeps each value in the member; the
// patch back takes it out again. vN/main.c defines VERSION. One command
// per line on stdin:
//   add K N   pending[K] += N, and the stat's hits += N
//   r         every pending count, then the hits
//   v         the version
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_lines.h"

#if VERSION >= 2
typedef struct __attribute__((aligned(64))) pending {
  unsigned long value;
} pending_t;
struct counter {
  long value;
};
#define VALUE(x) ((x).value)
#else
typedef unsigned long pending_t;
#define VALUE(x) (x)
#endif

pending_t pending[4];

struct stat {
  int id;
#if VERSION >= 2
  struct counter hits;
#else
  long hits;
#endif
};

struct stat* stat;

static void handle(const char* line) {
  int k = 0, n = 0;
  if (sscanf(line, "add %d %d", &k, &n) == 2 && k >= 0 && k < 4) {
    if (!stat) stat = calloc(1, sizeof *stat);
    VALUE(pending[k]) += (unsigned long)n;
    VALUE(stat->hits) += n;
    printf("added\n");
  } else if (strcmp(line, "r") == 0) {
    for (int i = 0; i < 4; i++) printf("%lu ", VALUE(pending[i]));
    printf("hits %ld\n", stat ? VALUE(stat->hits) : -1L);
  } else {
    ANSWER_VERSION_OR_UNKNOWN(line);
    return;
  }
  fflush(stdout);
}

int main(void) { return serve_lines(handle); }
