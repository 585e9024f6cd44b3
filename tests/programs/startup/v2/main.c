// startup v2: new state set at start-up, in every way graft diff finds
// (see v1/main.c): a new member of the config set by setup(), a new global
// set by main before its loop, one set by the worker before its loop, one
// behind the once-flag lazy_done, one set by a constructor and one by a
// pthread_once routine.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct config {
  int port;
  int workers;
  int verbose;
};

static struct config cfg;
static int requests[2], answers[2];
static int lazy_done;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char* greeting;
static int worker_slots;
static int lazy_size;
static int ctor_value;
static int once_value;

static void setup(int argc, char** argv) {
  cfg.port = argc > 1 ? atoi(argv[1]) : 8080;
  cfg.workers = 1;
  cfg.verbose = argc > 2;
}

// Computed when the program starts (a constant would be folded into the initial value).
__attribute__((constructor)) static void early(void) { ctor_value = sysconf(_SC_PAGESIZE) > 0 ? 7 : 8; }

static void init_once(void) { once_value = 5; }

__attribute__((noinline)) static void lazy_init(void) {
  if (!lazy_done) {
    lazy_done = 1;
    lazy_size = 64;
  }
}

static void* worker(void* arg) {
  (void)arg;
  worker_slots = 4;
  char c;
  for (;;) {
    if (read(requests[0], &c, 1) != 1) return NULL;
    lazy_init();
    pthread_once(&once, init_once);
    if (write(answers[1], &c, 1) != 1) return NULL;
  }
}

__attribute__((noinline)) static int version(void) { return 2; }

// A product string formatted into a banner at start-up (a version string
// in a server header): a release changes it, and graft says the banner
// keeps the old one.
static const char product[] = "startup/2";
static char banner[64];

int main(int argc, char** argv) {
  snprintf(banner, sizeof banner, "Server: %s", product);
  setup(argc, argv);
  greeting = strdup("hello");
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
      printf("%d %d %s %d %d %d %d %d\n", version(), cfg.port, greeting, cfg.verbose, worker_slots, lazy_size,
             ctor_value, once_value);
    }
    fflush(stdout);
  }
  return 0;
}
