// Test target for a release whose only change to `main` is its version
// string. Worker threads sit forever in their loop, blocked in read() on
// their own pipe; a ticker thread counts; `main` sits forever in its command
// loop, blocked in fgets(). One command per line on stdin:
//   poke     sends a byte to every worker, waits for their answers
//   served   prints how many pokes the workers answered and whether the ticker runs
//   version  prints the version string
//   banner   prints the banner chosen at start-up
//   anything else: an error line on stderr (the version in it), "error" on stdout
// v2 changes only VERSION. Start-up keeps the version in a frame slot
// (`prefix`, volatile: in memory whatever the register allocation, as a large
// main's spills are) for its error messages, and the error paths keep the
// GOT-loaded stderr in one: values of the old code left in the frame, which
// no path from the waiting fgets() reads before writing them again.
// v3 changes BANNER: the banner, chosen before the loop and kept in a frame
// slot, is read after every fgets(): a value of the old code live across the
// waiting call, which therefore does not continue.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERSION "release 2.0"
#define BANNER "hello"
#define MAX_WORKERS 8

static int requests[MAX_WORKERS][2], answers[2];
static long served, ticks;

// Never returns, the same in every version.
static void* worker_loop(void* arg) {
  const int fd = requests[(long)arg][0];
  char c;
  for (;;) {
    ssize_t n = read(fd, &c, 1);
    if (n != 1) {
      if (n < 0 && errno == EINTR) continue;
      return NULL;
    }
    __atomic_add_fetch(&served, 1, __ATOMIC_RELAXED);
    if (write(answers[1], &c, 1) != 1) return NULL;
  }
}

// Activity while main waits: never returns, the same in every version.
static void* ticker(void* arg) {
  (void)arg;
  for (;;) {
    __atomic_add_fetch(&ticks, 1, __ATOMIC_RELAXED);
    usleep(200);
  }
}

int main(int argc, char** argv) {
  const char* volatile prefix = VERSION;
  const char* volatile banner = argc > 2 ? argv[2] : BANNER;
  const int workers = argc > 1 ? atoi(argv[1]) : 2;
  if (workers < 1 || workers > MAX_WORKERS) {
    FILE* volatile err = stderr;
    fprintf(err, "%s: %s workers? between 1 and %d\n", prefix, argv[1], MAX_WORKERS);
    return 2;
  }
  pthread_t t;
  if (pipe(answers) != 0 || pthread_create(&t, NULL, ticker, NULL) != 0) return 1;
  for (long i = 0; i < workers; i++) {
    if (pipe(requests[i]) != 0 || pthread_create(&t, NULL, worker_loop, (void*)i) != 0) {
      FILE* volatile err = stderr;
      fprintf(err, "%s: cannot start worker %ld: %s\n", prefix, i, strerror(errno));
      return 1;
    }
  }
  printf("ready %d %s\n", getpid(), prefix);
  fflush(stdout);
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "poke", 4) == 0) {
      char c = 1;
      for (int i = 0; i < workers; i++)
        if (write(requests[i][1], &c, 1) != 1 || read(answers[0], &c, 1) != 1) {
          fprintf(stderr, VERSION ": worker %d is gone\n", i);
          return 1;
        }
      printf("poked %d\n", workers);
    } else if (strncmp(line, "served", 6) == 0) {
      const long before = __atomic_load_n(&ticks, __ATOMIC_RELAXED);
      usleep(5000);
      printf("served %ld ticking %d\n", __atomic_load_n(&served, __ATOMIC_RELAXED),
             __atomic_load_n(&ticks, __ATOMIC_RELAXED) > before);
    } else if (strncmp(line, "version", 7) == 0) {
      printf("%s\n", VERSION);
    } else if (strncmp(line, "banner", 6) == 0) {
      printf("%s\n", banner);
    } else {
      FILE* volatile err = stderr;
      fprintf(err, VERSION ": unknown command %s", line);
      printf("error\n");
    }
    fflush(stdout);
  }
  return 0;
}
