// (v2 of) Test target for a never-returning loop whose frame points to changed data:
// each worker keeps `it`, a pointer to its struct item (also reachable from
// the global items[]), in a local across the read() it waits in. v2 changes
// struct item's layout (count moves; a new field takes the spare's place,
// the same size, so each item is transformed in place) and the loop's body
// uses the new field: a worker moving into the new body carries `it`,
// pointing at the transformed item. One
// command per line on stdin:
//   wake     sends a byte to every worker, waits for their answers
//   report   each worker's item as it last published it
//   v        the version
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 2

struct item {
  long twice;  // new in v2, where v1 had `spare`; count moves after it
  long count;
};

static struct item* items[WORKERS];
static int requests[WORKERS][2], answers[2];
static char published[WORKERS][64];

__attribute__((noinline)) static void publish(long id, const struct item* it) {
  snprintf(published[id], sizeof published[id], "%ld/%ld", it->count, it->twice);
}

// Never returns: waits in read() holding `it`.
static void* worker_loop(void* arg) {
  const long id = (long)arg;
  struct item* it = items[id];
  char c;
  for (;;) {
    if (read(requests[id][0], &c, 1) != 1) return NULL;
    it->count++;
    it->twice = it->count * 2;
    publish(id, it);
    if (write(answers[1], &c, 1) != 1) return NULL;
  }
}

__attribute__((noinline)) static int version(void) { return 2; }

int main(void) {
  if (pipe(answers) != 0) return 1;
  for (long i = 0; i < WORKERS; i++) {
    items[i] = calloc(1, sizeof *items[i]);
    pthread_t t;
    if (!items[i] || pipe(requests[i]) != 0 || pthread_create(&t, NULL, worker_loop, (void*)i) != 0) return 1;
  }
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    char c = 1;
    if (strncmp(line, "wake", 4) == 0) {
      for (int w = 0; w < WORKERS; w++)
        if (write(requests[w][1], &c, 1) != 1) return 1;
      for (int w = 0; w < WORKERS; w++)
        if (read(answers[0], &c, 1) != 1) return 1;
      printf("woken\n");
    } else if (strncmp(line, "report", 6) == 0) {
      printf("%s %s\n", published[0], published[1]);
    } else {
      printf("%d\n", version());
    }
    fflush(stdout);
  }
  return 0;
}
