// Test target: worker threads call into code that the versions change, while
// the main thread answers one command per line on stdin.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prog.h"

atomic_long total_calls;  // state that must survive every update

static void* worker(void* arg) {
  const useconds_t pause = (useconds_t)(long)arg;
  for (;;) {
    atomic_fetch_add(&total_calls, compute(1) != 0);
    usleep(pause);
  }
  return NULL;
}

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 4;
  long pause_us = argc > 2 ? atol(argv[2]) : 200;  // between two calls of each worker
  for (int i = 0; i < threads; i++) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (pthread_create(&t, &attr, worker, (void*)pause_us) != 0) return 1;
  }
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    handle(line);
    fflush(stdout);
  }
  return 0;
}
