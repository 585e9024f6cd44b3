// Test target for waiting on frames that may point to changed data, under
// load (issue 15): an event loop that never returns serves requests a
// client thread sends back to back. Each request goes through dispatch(c),
// which is done with its struct conn pointer before it calls handle(): from
// there on DWARF does not say where `c` is (an entry value), so a thread in
// handle() must leave dispatch() first. dispatch() returns a conn in rax,
// where the loop holds it for a few instructions (a register a call
// clobbers: only a thread executing there is kept). Between requests the
// loop does housekeeping that holds nothing and waits in read(). v2 grows
// struct conn (each conn moves) and changes handle() and compact(). One
// command per line on stdin:
//   compact  starts a job in compact(), which v2 changes, for 1.5 s
//   stall    starts a thread that waits in stall(), holding a conn where
//            DWARF does not say (until unstall)
//   unstall  lets it go
//   report   whether the loop serves, and whether every conn was hit
//   v        the version
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONNS 4
#define VERSION 2

struct conn {
  long id;
  long hits;
  long bytes;
  char peer[64];
};

static struct conn* conns[CONNS];
static int requests[2], answers[2];
static volatile long served;

// The request's work: most of the loop's time is spent here.
__attribute__((noinline)) long handle(long id) {
  volatile long x = id;
  for (int i = 0; i < 300; i++) x = x * 31 + i;
  return id + 2;
}

// Done with `c` before the call: no frame slot or register keeps it. Gives
// back the conn that answers, in rax (a register a call clobbers).
__attribute__((noinline)) struct conn* dispatch(struct conn* c) {
  c->hits++;
  return conns[handle(c->id) % CONNS];
}

// Work between requests that holds nothing of the changed data: where a
// stop at any moment finds the loop half of the time.
__attribute__((noinline)) static void housekeeping(void) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do clock_gettime(CLOCK_MONOTONIC, &now);
  while ((now.tv_sec - start.tv_sec) * 1000000000 + (now.tv_nsec - start.tv_nsec) < 100000);
}

// Never returns.
static void* event_loop(void* arg) {
  (void)arg;
  unsigned char index;
  for (;;) {
    if (read(requests[0], &index, 1) != 1) return NULL;
    const struct conn* done = dispatch(conns[index % CONNS]);
    const long answer = done->id;
    housekeeping();
    served++;
    if (write(answers[1], &answer, sizeof answer) != sizeof answer) return NULL;
  }
}

// The load: one request after another, each answered before the next.
static void* client(void* arg) {
  (void)arg;
  long answer;
  for (unsigned char i = 0;; i++) {
    if (write(requests[1], &i, 1) != 1) return NULL;
    if (read(answers[0], &answer, sizeof answer) != sizeof answer) return NULL;
  }
}

// A job that keeps the update waiting for a while (v2 changes it): when it
// ends, only the event loop is left to wait for.
__attribute__((noinline)) long compact(void) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long rounds = 0;
  do {
    rounds += VERSION;
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < 1500);
  return rounds;
}

// Waits for a byte on stall_pipe holding `c` in a stack slot DWARF names
// for the whole function (from before it is stored: graft cannot tell from
// when it holds the pointer): a frame that may point to changed data where
// DWARF does not say, in unchanged code. (A parameter the frame is done
// with, DW_OP_entry_value past its last use, is no longer such a frame.)
static int stall_pipe[2];
__attribute__((noinline)) long stall(struct conn* c) {
  struct conn* volatile held = c;
  held->hits++;
  char byte;
  const long got = read(stall_pipe[0], &byte, 1) == 1 ? 1 : 0;
  return got + (held == 0);
}

static void* staller(void* arg) {
  (void)arg;
  stall(conns[1]);
  return NULL;
}

static void* compactor(void* arg) {
  (void)arg;
  compact();
  return NULL;
}

__attribute__((noinline)) static int version(void) { return VERSION; }

int main(void) {
  if (pipe(requests) != 0 || pipe(answers) != 0 || pipe(stall_pipe) != 0) return 1;
  for (long i = 0; i < CONNS; i++) {
    conns[i] = calloc(1, sizeof *conns[i]);
    if (!conns[i]) return 1;
    conns[i]->id = i;
  }
  pthread_t loop, load;
  if (pthread_create(&loop, NULL, event_loop, NULL) != 0 || pthread_create(&load, NULL, client, NULL) != 0) return 1;
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "compact", 7) == 0) {
      pthread_t job;
      if (pthread_create(&job, NULL, compactor, NULL) != 0 || pthread_detach(job) != 0) return 1;
      printf("compacting\n");
    } else if (strncmp(line, "stall", 5) == 0) {
      pthread_t job;
      if (pthread_create(&job, NULL, staller, NULL) != 0 || pthread_detach(job) != 0) return 1;
      printf("stalled\n");
    } else if (strncmp(line, "unstall", 7) == 0) {
      if (write(stall_pipe[1], "x", 1) != 1) return 1;
      printf("unstalled\n");
    } else if (strncmp(line, "report", 6) == 0) {
      int all = 1;
      for (int i = 0; i < CONNS; i++) all &= conns[i]->hits > 0;
      printf("%s %s\n", served > 0 ? "serving" : "idle", all ? "all-hit" : "some-unhit");
    } else {
      printf("%d\n", version());
    }
    fflush(stdout);
  }
  return 0;
}
