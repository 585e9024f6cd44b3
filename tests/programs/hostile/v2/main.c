// Test target: a hostile program. Once told "attack", one thread keeps
// putting a file it can read (argv[1], the decoy) over the descriptor
// numbers the next descriptors of the process get, and closing them again,
// while graft updates the process: a descriptor graft's injected calls make
// is replaced by the decoy at any moment. Another thread watches the
// process's own maps for the decoy. A worker calls the code the update changes.
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int decoy = -1;
static const char* decoy_path;
static atomic_int attacking;
atomic_long swaps, mapped_seen, calls;

int version(void) { return 2; }

static void* swapper(void* arg) {
  (void)arg;
  const int first = decoy + 1;  // the lowest free number: where the next descriptor lands
  for (;;) {
    if (!atomic_load(&attacking)) {
      usleep(1000);
      continue;
    }
    for (int n = first; n < first + 6; n++) dup2(decoy, n);
    for (int n = first; n < first + 6; n++) close(n);
    atomic_fetch_add(&swaps, 1);
  }
  return NULL;
}

// Whether the decoy is mapped in this process now.
static int decoy_mapped(void) {
  int found = 0;
  FILE* maps = fopen("/proc/self/maps", "r");
  if (!maps) return 0;
  char line[4096];
  while (fgets(line, sizeof line, maps))
    if (strstr(line, decoy_path)) found = 1;
  fclose(maps);
  return found;
}

static void* watcher(void* arg) {
  (void)arg;
  for (;;) {
    if (atomic_load(&attacking) && decoy_mapped()) atomic_fetch_add(&mapped_seen, 1);
    usleep(200);
  }
  return NULL;
}

static void* worker(void* arg) {
  (void)arg;
  for (;;) {
    atomic_fetch_add(&calls, version() > 0);
    usleep(100);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  decoy_path = argv[1];
  decoy = open(decoy_path, O_RDONLY);
  if (decoy < 0) return 3;
  pthread_t t;
  pthread_create(&t, NULL, swapper, NULL);
  pthread_create(&t, NULL, watcher, NULL);
  pthread_create(&t, NULL, worker, NULL);
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (!strncmp(line, "attack", 6)) {
      atomic_store(&attacking, 1);
      printf("attacking\n");
    } else if (!strncmp(line, "stop", 4)) {
      atomic_store(&attacking, 0);
      printf("stopped\n");
    } else if (!strncmp(line, "seen", 4)) {
      printf("%ld %d\n", atomic_load(&mapped_seen), atomic_load(&swaps) > 0);
    } else {
      printf("%d\n", version());
    }
    fflush(stdout);
  }
  return 0;
}
