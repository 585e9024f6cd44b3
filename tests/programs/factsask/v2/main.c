// Test target: two workers, each with its own struct task reached only
// through WORKER.ctx, stored from the thread's start argument. The same
// source in every version (worker.h differs). One command per line:
//   tasks   every task's id and how much it did (a number that grows)
//   v       the version
#include <graft/graft.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

WORKER workers[2];
FILE* log_file;  // glibc's FILE has void * members the program never writes
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void* run(void* arg) {
  pthread_mutex_lock(&lock);
  WORKER* w = &workers[((struct task*)arg)->id];
  w->ctx = arg;
  pthread_mutex_unlock(&lock);
  for (;;) {
    graft_update_point();
    pthread_mutex_lock(&lock);
    ((struct task*)w->ctx)->done++;
    pthread_mutex_unlock(&lock);
    usleep(1000);
  }
  return NULL;
}

static void start(void) {
  log_file = fopen("/dev/null", "w");
  for (int i = 0; i < 2; i++) {
    struct task* t = calloc(1, sizeof *t);
    t->id = i;
    workers[i].id = i;
    pthread_t thread;
    pthread_create(&thread, NULL, run, t);
  }
}

static void tasks(void) {
  pthread_mutex_lock(&lock);
  for (int i = 0; i < 2; i++) {
    const struct task* t = workers[i].ctx;
    printf("%s%ld:%s", i ? " " : "", t ? t->id : -1L, t && t->done > 0 ? "busy" : "idle");
  }
  pthread_mutex_unlock(&lock);
  printf("\n");
}

int main(void) {
  start();
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "tasks", 5) == 0) {
      tasks();
    } else if (line[0] == 'v') {
      printf("%d\n", VERSION);
    } else {
      printf("?\n");
    }
    fprintf(log_file, "%s", line);
    fflush(stdout);
  }
  return 0;
}
