// Test target: one thread never leaves the function the next version changes,
// called from another one it changes too.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

atomic_long progress;
atomic_int spinning;  // which version started the spinner

void spin_forever(void) {
  for (;;) {
    atomic_fetch_add(&progress, 1);  // two steps: not equivalent for continuation
    atomic_fetch_add(&progress, 1);
    usleep(100);
  }
}

int version(void) { return 2; }

// Prints the state; version() may be folded into it, so it is not in main.
void report(void) {
  printf("%d %d\n", version(), atomic_load(&progress) > 0);
  fflush(stdout);
}

static void* spinner(void* arg) {
  (void)arg;
  atomic_store(&spinning, version());  // a call more: not equivalent for continuation
  spin_forever();
  return NULL;
}

int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, spinner, NULL);
  while (atomic_load(&progress) == 0) usleep(100);  // ready once the spinner runs
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    report();
  }
  return 0;
}
