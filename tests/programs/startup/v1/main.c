// Test target for start-up state (graft diff refuses new state that the new
// version sets in code the running process will not run again).
//
// main parses its arguments into a struct config, starts a worker thread
// that waits on a pipe forever, then serves one command per line on stdin:
//   wake   sends a byte to the worker and waits for its answer
//   v      prints the version and what the version reports
// v2 adds state set at start-up in every way graft knows (refused); v3 adds
// state set only by code that runs again (accepted, applied live).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct config {
  int port;
  int workers;
};

static struct config cfg;
static int requests[2], answers[2];
static int lazy_done;  // a once-flag: already set in a running process
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void setup(int argc, char** argv) {
  cfg.port = argc > 1 ? atoi(argv[1]) : 8080;
  cfg.workers = 1;
}

static void init_once(void) {}

__attribute__((noinline)) static void lazy_init(void) {
  if (!lazy_done) lazy_done = 1;
}

static void* worker(void* arg) {
  (void)arg;
  char c;
  for (;;) {
    if (read(requests[0], &c, 1) != 1) return NULL;
    lazy_init();
    pthread_once(&once, init_once);
    if (write(answers[1], &c, 1) != 1) return NULL;
  }
}

__attribute__((noinline)) static int version(void) { return 1; }

__attribute__((noinline)) static void report(void) { printf("%d %d\n", version(), cfg.port); }

// A product string formatted into a banner at start-up (a version string
// in a server header): a release changes it, and graft says the banner
// keeps the old one.
static const char product[] = "startup/1";
static char banner[64];

int main(int argc, char** argv) {
  snprintf(banner, sizeof banner, "Server: %s", product);
  setup(argc, argv);
  pthread_t t;
  if (pipe(requests) != 0 || pipe(answers) != 0 || pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    char c = 1;
    if (strncmp(line, "wake", 4) == 0) {
      if (write(requests[1], &c, 1) != 1 || read(answers[0], &c, 1) != 1) return 1;
      printf("woken\n");
    } else {
      report();
    }
    fflush(stdout);
  }
  return 0;
}
