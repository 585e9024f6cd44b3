// Test target for checkpoints: threads in the changed function in several
// ways, chosen by the first argument:
//   trap N   the deadlock trap: a holder keeps a mutex in unchanged code most
//            of the time; N workers sit inside changed(), blocked on it
//   churn N  N threads enter and leave changed() as fast as they can
//   busy N   N threads spin in unchanged code; changed() is called rarely
//   spawn N  N threads each start short-lived threads that call changed()
//            and exit, without pause
//   signal 1 a thread that waits in pause() runs changed() in its SIGUSR1
//            handler, which another thread triggers without pause
//   any mode: the line "hold" takes the lock in the main thread and answers
//            "holding" once a thread is inside changed(), waiting for the
//            lock (it may have got there first); "release" lets it go; "park"
//            starts a thread that stays inside changed_park() until
//            "unpark", keeping an update waiting; "t" prints
//            "traced BEGAN ENDED": short-lived threads of spawn mode that
//            began, and that ended, while a tracer (graft) held them
//   rate N GAP_US INSIDE_US [spin|sleep]
//            N threads call changed_timed() in a loop: INSIDE_US inside it
//            (spinning, or blocked in nanosleep with "sleep"; 0: only an
//            atomic add), then on average GAP_US outside (nanosleep of a
//            random length in [GAP/2, 3 GAP/2], timer slack 1 ns; 0: back to
//            back), from a random phase. For the checkpoint benchmarks (bench/run.sh
//            BUILD rate|threads); the line "c" on stdin prints "calls TOTAL".
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <graft/graft.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
atomic_long counter;
atomic_long spins;
atomic_int started;
atomic_long calls;
atomic_long inside;        // threads in changed() now
atomic_long born_traced;   // short-lived threads that began while traced
atomic_long ended_traced;  // short-lived threads that ended while traced
static long gap_us, inside_us;
static int inside_sleeps;

static void busy_for_us(long us) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do clock_gettime(CLOCK_MONOTONIC, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static void sleep_for_ns(long ns) {
  struct timespec d = {ns / 1000000000L, ns % 1000000000L};
  while (clock_nanosleep(CLOCK_MONOTONIC, 0, &d, &d) != 0) {
  }
}

static void sleep_for_us(long us) { sleep_for_ns(us * 1000L); }

// The function the next version changes; workers block on the lock inside it.
long changed(int step) {
  atomic_fetch_add(&inside, 1);
  pthread_mutex_lock(&lock);
  long value = atomic_fetch_add(&counter, step) + step * 2;
  pthread_mutex_unlock(&lock);
  atomic_fetch_sub(&inside, 1);
  return value;
}

// The changed function of the rate mode: no lock, so that many threads can be
// inside it at once, for INSIDE_US.
long changed_timed(int step) {
  if (inside_us > 0) {
    if (inside_sleeps) sleep_for_us(inside_us);
    else busy_for_us(inside_us);
  }
  return atomic_fetch_add(&counter, step) + step * 2;
}

// Where the thread of "park" waits until "unpark".
atomic_int parked, park_entered;
long changed_park(void) {
  atomic_store(&park_entered, 1);
  while (atomic_load(&parked)) {
    usleep(50);  // two calls: not equivalent for continuation
    usleep(50);
  }
  return 2;
}

static void* parker(void* arg) {
  (void)arg;
  changed_park();
  return NULL;
}

int version(void) { return 2; }

static void* holder(void* arg) {
  (void)arg;
  atomic_fetch_add(&started, 1);
  for (;;) {
    pthread_mutex_lock(&lock);
    busy_for_us(2000);  // holds the lock most of the time, in unchanged code
    pthread_mutex_unlock(&lock);
    usleep(50);
  }
  return NULL;
}

static void* worker(void* arg) {
  (void)arg;
  atomic_fetch_add(&started, 1);
  for (;;) {
    graft_update_point();  // a quiet moment: outside changed(), holding nothing
    changed(1);
  }
  return NULL;
}

static void* rate_worker(void* arg) {
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // a 1 us gap sleeps about 1 us, not 50
  atomic_fetch_add(&started, 1);
  // A random phase, and gaps drawn uniformly from [GAP/2, 3 GAP/2]: threads
  // would otherwise stay in step (all inside, or all outside, the function at
  // once), as they start together and leave a stop or a checkpoint together.
  unsigned seed = (unsigned)(long)arg * 2654435761u ^ (unsigned)getpid();
  if (gap_us + inside_us > 0) sleep_for_us(rand_r(&seed) % (gap_us + inside_us));
  for (;;) {
    changed_timed(1);
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    if (gap_us > 0) sleep_for_ns(gap_us * 500L + (long)(rand_r(&seed) % (unsigned)(gap_us * 1000L + 1)));
  }
  return NULL;
}

// Whether a tracer holds the calling thread (/proc/thread-self/status TracerPid).
static int traced(void) {
  char status[4096];
  int fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, status, sizeof status - 1);
  close(fd);
  status[n > 0 ? n : 0] = 0;
  const char* tracer = strstr(status, "TracerPid:");
  return tracer && atol(tracer + strlen("TracerPid:")) != 0;
}

static void* short_lived(void* arg) {
  (void)arg;
  if (traced()) atomic_fetch_add(&born_traced, 1);
  changed(1);
  if (traced()) atomic_fetch_add(&ended_traced, 1);
  return NULL;
}

static void* spawner(void* arg) {
  (void)arg;
  atomic_fetch_add(&started, 1);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (;;) {
    pthread_t t;
    if (pthread_create(&t, &attr, short_lived, NULL) == 0) pthread_join(t, NULL);
  }
  return NULL;
}

static void on_signal(int sig) {
  (void)sig;
  changed(1);  // only this thread ever takes the lock, and only here
}

static void* signalled_thread(void* arg) {
  (void)arg;
  atomic_fetch_add(&started, 1);
  for (;;) pause();
  return NULL;
}

static void* signal_sender(void* arg) {
  pthread_t target = *(pthread_t*)arg;
  atomic_fetch_add(&started, 1);
  for (;;) {
    pthread_kill(target, SIGUSR1);
    usleep(20);
  }
  return NULL;
}

static void* spinner(void* arg) {
  (void)arg;
  atomic_fetch_add(&started, 1);
  for (long i = 0;; i++) {
    atomic_fetch_add(&spins, 1);
    if (i % 10000000 == 0) changed(0);
  }
  return NULL;
}

void report(const char* line) {
  if (strcmp(line, "hold\n") == 0) {
    // Once a thread waits inside changed() for the lock (it may have been
    // waiting there before the lock was taken).
    pthread_mutex_lock(&lock);
    while (atomic_load(&inside) == 0) usleep(100);
    printf("holding\n");
    return;
  }
  if (strcmp(line, "release\n") == 0) {
    pthread_mutex_unlock(&lock);
    printf("released\n");
    return;
  }
  if (strcmp(line, "park\n") == 0) {
    pthread_t t;
    atomic_store(&parked, 1);
    pthread_create(&t, NULL, parker, NULL);
    while (!atomic_load(&park_entered)) usleep(100);
    printf("parked\n");
    return;
  }
  if (strcmp(line, "unpark\n") == 0) {
    atomic_store(&parked, 0);
    printf("unparked\n");
    return;
  }
  if (line[0] == 't') {
    printf("traced %ld %ld\n", atomic_load(&born_traced), atomic_load(&ended_traced));
    return;
  }
  if (line[0] == 'c') {
    printf("calls %ld\n", atomic_load(&calls));
    return;
  }
  printf("%d %ld\n", version(), atomic_load(&counter) > 0 || atomic_load(&spins) > 0 ? 1L : 0L);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "trap";
  int n = argc > 2 ? atoi(argv[2]) : 4;
  int expected = n;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t t;
  if (strcmp(mode, "trap") == 0) {
    pthread_create(&t, &attr, holder, NULL);
    expected++;
  }
  if (strcmp(mode, "rate") == 0) {
    gap_us = argc > 3 ? atol(argv[3]) : 1000;
    inside_us = argc > 4 ? atol(argv[4]) : 0;
    inside_sleeps = argc > 5 && strcmp(argv[5], "sleep") == 0;
  }
  static pthread_t receiver;
  if (strcmp(mode, "signal") == 0) {
    signal(SIGUSR1, on_signal);
    pthread_create(&receiver, &attr, signalled_thread, NULL);
    pthread_create(&t, &attr, signal_sender, &receiver);
    n = 0;
    expected = 2;
  }
  for (int i = 0; i < n; i++)
    pthread_create(&t, &attr,
                   strcmp(mode, "busy") == 0    ? spinner
                   : strcmp(mode, "spawn") == 0 ? spawner
                   : strcmp(mode, "rate") == 0  ? rate_worker
                                                : worker,
                   (void*)(long)i);
  while (atomic_load(&started) < expected || (atomic_load(&counter) == 0 && atomic_load(&spins) == 0)) usleep(100);
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    report(line);
    fflush(stdout);
  }
  return 0;
}
