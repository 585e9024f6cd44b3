// Test target for unwinding without frame pointers: on demand, a thread
// waits inside compare_items(), which the next version changes, until told
// to go on. How it got there depends on the first argument:
//   qsort   the sorter thread runs sort_items() (changed too), whose qsort()
//           calls compare_items() from libc's merge sort, built without
//           frame pointers (msort_with_tmp keeps a count in rbp): only the
//           call-frame information leads from compare_items back to
//           sort_items
//   signal  a thread waits in pause() inside idle_loop() (changed too); the
//           SIGUSR1 handler calls compare_items(): idle_loop is found only
//           through the signal frame
// Commands, one line each, one reply line each:
//   hold     the next compare_items() waits; "holding" once a thread waits in it
//   release  lets it go; "released" once it is out (qsort: the sort is done)
//   sort     (qsort) sorts once more; "sorted 1" if the result is in order
//   v        "<version> <sorts done>"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { kItems = 16 };
static int go_pipe[2], release_pipe[2];
atomic_int hold_next, holding, sorted_ok, idler_tid;
atomic_long compares, sorts, idles;

static void wait_for(int fd) {
  char c;
  while (read(fd, &c, 1) < 0 && errno == EINTR) continue;
}

static void wait_until(atomic_int* flag, int value) {
  for (int i = 0; i < 100000 && atomic_load(flag) != value; i++) usleep(100);
}

// Whether a thread of ours sleeps in a system call (state S in /proc).
static int sleeping(int tid) {
  char path[64], stat[256] = "";
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  FILE* f = fopen(path, "r");
  if (!f) return 0;
  if (!fgets(stat, sizeof stat, f)) stat[0] = 0;
  fclose(f);
  const char* end = strrchr(stat, ')');
  return end && end[1] == ' ' && end[2] == 'S';
}

// The function the next version changes; a thread waits inside it on demand.
int compare_items(const void* a, const void* b) {
  if (atomic_exchange(&hold_next, 0)) {
    atomic_store(&holding, 1);
    wait_for(release_pipe[0]);
    atomic_store(&holding, 0);
  }
  atomic_fetch_add(&compares, 1);  // two steps: not equivalent for continuation
  atomic_fetch_add(&compares, 1);
  const int x = *(const int*)a, y = *(const int*)b;
  return (x > y) - (x < y);
}

void sort_items(void) {
  int items[kItems];
  for (int i = 0; i < kItems; i++) items[i] = (i * 7) % kItems;
  qsort(items, kItems, sizeof items[0], compare_items);
  int ok = 1;
  for (int i = 1; i < kItems; i++) ok &= items[i - 1] <= items[i];
  atomic_store(&sorted_ok, ok);
  atomic_fetch_add(&sorts, 1);
  atomic_fetch_add(&compares, 1);
}

static void* sorter(void* arg) {
  (void)arg;
  for (;;) {
    wait_for(go_pipe[0]);
    sort_items();
  }
  return NULL;
}

void idle_loop(void) {
  for (;;) {
    pause();
    atomic_fetch_add(&idles, 1);  // two steps: not equivalent for continuation
    atomic_fetch_add(&idles, 1);
  }
}

static void on_signal(int sig) {
  (void)sig;
  int a = 1, b = 2;
  compare_items(&a, &b);
}

static void* idler(void* arg) {
  (void)arg;
  atomic_store(&idler_tid, (int)syscall(SYS_gettid));
  idle_loop();
  return NULL;
}

int version(void) { return 2; }

int main(int argc, char** argv) {
  const int by_signal = argc > 1 && strcmp(argv[1], "signal") == 0;
  if (pipe(go_pipe) != 0 || pipe(release_pipe) != 0) return 1;
  pthread_t worker;
  if (by_signal) {
    signal(SIGUSR1, on_signal);
    pthread_create(&worker, NULL, idler, NULL);
  } else {
    pthread_create(&worker, NULL, sorter, NULL);
  }
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    const long done = atomic_load(&sorts);
    if (strncmp(line, "hold", 4) == 0) {
      atomic_store(&hold_next, 1);
      // The signal must find the idler in pause(), called from idle_loop().
      for (int i = 0; i < 100000 && by_signal && !(atomic_load(&idler_tid) && sleeping(idler_tid)); i++) usleep(100);
      if (by_signal) pthread_kill(worker, SIGUSR1);
      else (void)!write(go_pipe[1], "g", 1);
      wait_until(&holding, 1);
      printf("%s\n", atomic_load(&holding) ? "holding" : "not holding");
    } else if (strncmp(line, "release", 7) == 0) {
      (void)!write(release_pipe[1], "r", 1);
      wait_until(&holding, 0);
      for (int i = 0; i < 100000 && !by_signal && atomic_load(&sorts) == done; i++) usleep(100);
      printf("released\n");
    } else if (strncmp(line, "sort", 4) == 0) {
      (void)!write(go_pipe[1], "g", 1);
      for (int i = 0; i < 100000 && atomic_load(&sorts) == done; i++) usleep(100);
      printf("sorted %d\n", atomic_load(&sorted_ok));
    } else {
      printf("%d %ld\n", version(), (long)atomic_load(&sorts));
    }
    fflush(stdout);
  }
  return 0;
}
