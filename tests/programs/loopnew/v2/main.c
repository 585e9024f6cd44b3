// Test target for a thread moving into a changed loop body whose locals
// changed (issue 10: new locals get their initial values, a local whose type
// changed is converted like data). Worker threads sit forever in one loop
// around read() on their own pipe. One command per line on stdin:
//   wake     sends a byte to every worker at once, waits for their answers
//   report   prints each worker's "count/balance/served/generation/version"
//   v        prints the version
// v2: `balance` goes from int to long (a negative value, sign-extended),
// the struct `tally` gets a long count and a new member, and a new local
// `served` counts the wakes a worker has served in v2 (0 when it moves in).
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 3

static int requests[WORKERS][2], answers[2];
static char reports[WORKERS][96];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

struct tally {
  long count;      // was int
  char c;
  long generation;  // new
};

__attribute__((noinline)) static void publish(int worker, const struct tally* t, long balance, long served) {
  pthread_mutex_lock(&lock);
  snprintf(reports[worker], sizeof reports[worker], "%ld/%ld/%ld/%ld/2", t->count, balance, served, t->generation);
  pthread_mutex_unlock(&lock);
}

// Never returns: each worker waits here for the whole life of the process.
static void* worker_loop(void* arg) {
  const int worker = (int)(long)arg;
  const int fd = requests[worker][0];
  struct tally state = {0, 0, 0};  // read() gets &state.c: it lives in the frame
  long balance = -100 * (worker + 1);  // was int
  long served = 0;                     // new: live across the read
  for (;;) {
    ssize_t n = read(fd, &state.c, 1);
    if (n != 1) {
      if (n < 0 && errno == EINTR) continue;
      return NULL;
    }
    state.count++;
    state.generation += 10;
    balance -= 1;
    served++;
    publish(worker, &state, balance, served);
    if (write(answers[1], &state.c, 1) != 1) return NULL;
  }
}

static int version(void) { return 2; }

int main(void) {
  if (pipe(answers) != 0) return 1;
  for (long i = 0; i < WORKERS; i++) {
    pthread_t t;
    if (pipe(requests[i]) != 0 || pthread_create(&t, NULL, worker_loop, (void*)i) != 0) return 1;
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
      pthread_mutex_lock(&lock);
      for (int w = 0; w < WORKERS; w++) printf("%s%s", w ? " " : "", reports[w]);
      pthread_mutex_unlock(&lock);
      printf("\n");
    } else {
      printf("%d\n", version());
    }
    fflush(stdout);
  }
  return 0;
}
