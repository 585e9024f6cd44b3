// The test program every version shares (each version's main.c includes it;
// the test passes -I to this directory): worker threads each run step() on
// request, so every thread's thread-local counters can be read through the
// program's output. "step K" runs it in worker K, "step main" in the main thread.
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prog.h"

__thread long shared_ticks;

struct worker {
  pthread_t thread;
  sem_t go, done;
  long result;
};

static void* work(void* arg) {
  struct worker* w = arg;
  for (;;) {
    while (sem_wait(&w->go) != 0) {}
    w->result = step();
    sem_post(&w->done);
  }
  return NULL;
}

int main(int argc, char** argv) {
  const int count = argc > 1 ? atoi(argv[1]) : 4;
  struct worker* workers = calloc((size_t)count, sizeof *workers);
  for (int i = 0; i < count; i++) {
    sem_init(&workers[i].go, 0, 0);
    sem_init(&workers[i].done, 0, 0);
    if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0) return 1;
  }
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    if (strcmp(line, "step main") == 0) {
      printf("%ld\n", step());
    } else if (strncmp(line, "step ", 5) == 0) {
      const int k = atoi(line + 5);
      if (k < 0 || k >= count) {
        printf("no worker %d\n", k);
      } else {
        sem_post(&workers[k].go);
        while (sem_wait(&workers[k].done) != 0) {}
        printf("%ld\n", workers[k].result);
      }
    } else {
      printf("unknown\n");
    }
    fflush(stdout);
  }
  return 0;
}
