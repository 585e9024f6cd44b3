// Test target: a process that ends its program while graft updates it, from
// a thread graft is not running anything in.
//
//   prog TRIGGER exit|exec [stuck]
//
// A watcher thread waits for the file TRIGGER to exist, then exits the
// process (exit_group) or execs /bin/sleep (every other thread ends, the
// process is another program). graft's test hook GRAFT_TEST_TRIGGER_AT
// creates the file at a named point of the update (a signal would not do:
// graft, the tracer, gets it first). "stuck": one more thread never leaves
// a function the next version changes, so that an update waits on its
// checkpoints. The main thread waits in read (graft's usual injector).
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

atomic_long progress;
static const char* trigger;
static int execs;

// Never leaves, and calls nothing: no frame of it waits for a call.
void stuck_forever(void) {
  for (;;) atomic_fetch_add(&progress, 2);
}

int version(void) { return 2; }

static void* stuck(void* arg) {
  (void)arg;
  stuck_forever();
  return NULL;
}

static void* watcher(void* arg) {
  (void)arg;
  atomic_fetch_add(&progress, 1);
  while (access(trigger, F_OK) != 0) usleep(100);
  if (execs) {
    char* const argv[] = {"sleep", "60", NULL};
    execv("/bin/sleep", argv);
  }
  exit(7);
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  trigger = argv[1];
  execs = strcmp(argv[2], "exec") == 0;
  pthread_t t;
  pthread_create(&t, NULL, watcher, NULL);
  if (argc > 3 && strcmp(argv[3], "stuck") == 0) pthread_create(&t, NULL, stuck, NULL);
  while (atomic_load(&progress) == 0) usleep(100);  // ready once a thread runs
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    printf("%d\n", version());
    fflush(stdout);
  }
  return 0;
}
