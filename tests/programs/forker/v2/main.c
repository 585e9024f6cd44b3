// Test target: one thread never leaves a changed function (so graft keeps its
// checkpoints planted until its deadline) while another forks children that
// call the changed code. No child may die of graft's breakpoints.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

atomic_long forks, bad_children, progress;

long changed(long x) { return x + 1 + (x == -5); }

atomic_long rounds_seen;

void stuck(void) {
  // New, and live across the waits: no value of the old frame gives it, so
  // no thread can move into this body (no transfer point).
  long rounds = 0;
  for (;;) {
    atomic_fetch_add(&progress, changed(0));
    usleep(100);  // two calls: not equivalent for continuation
    usleep(101);
    atomic_store(&rounds_seen, ++rounds);
  }
}

static void* stuck_thread(void* arg) {
  (void)arg;
  stuck();
  return NULL;
}

static void* forking_thread(void* arg) {
  (void)arg;
  for (;;) {
    pid_t child = fork();
    if (child == 0) _exit(changed(41) == 42 ? 0 : 1);
    int status = 0;
    waitpid(child, &status, 0);
    atomic_fetch_add(&forks, 1);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) atomic_fetch_add(&bad_children, 1);
    usleep(2000);
  }
  return NULL;
}

void report(void) { printf("forks=%ld bad=%ld\n", (long)atomic_load(&forks), (long)atomic_load(&bad_children)); }

int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, stuck_thread, NULL);
  pthread_create(&t, NULL, forking_thread, NULL);
  while (atomic_load(&forks) == 0 || atomic_load(&progress) == 0) usleep(100);
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    report();
    fflush(stdout);
  }
  return 0;
}
