// A program whose logic lives in a module it loads with dlopen, as servers
// load theirs: lines on stdin, answers on stdout, and two threads calling
// into the module all the time.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*version_fn)(void);
typedef int (*put_fn)(int, int);
typedef int (*get_fn)(int, char *, int);

static void *module;
static version_fn version;
static put_fn put;
static get_fn get;
static volatile int ticks;

static void *ticker(void *arg) {
  (void)arg;
  for (;;) {
    version_fn v = __atomic_load_n(&version, __ATOMIC_ACQUIRE);
    if (v) ticks += v();
    usleep(200);
  }
  return NULL;
}

static const char *load(const char *path) {
  if (module) return "already loaded";
  void *m = dlopen(path, RTLD_NOW);
  if (!m) return dlerror();
  put = (put_fn)dlsym(m, "mod_put");
  get = (get_fn)dlsym(m, "mod_get");
  module = m;
  __atomic_store_n(&version, (version_fn)dlsym(m, "mod_version"), __ATOMIC_RELEASE);
  return "loaded";
}

static const char *greeting(void) { return "host v1"; }

static const char *unload(void) {
  if (!module) return "not loaded";
  __atomic_store_n(&version, NULL, __ATOMIC_RELEASE);
  usleep(20000);  // the tickers are out of the module
  dlclose(module);
  module = NULL;
  return "unloaded";
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && strcmp(argv[1], "-") != 0) {
    const char *loaded = load(argv[1]);
    if (strcmp(loaded, "loaded") != 0) {
      fprintf(stderr, "host: %s\n", loaded);
      return 1;
    }
  }
  pthread_t t;
  for (int i = 0; i < 2; ++i) pthread_create(&t, NULL, ticker, NULL);
  printf("ready\n");
  char line[512], out[256];
  while (fgets(line, sizeof line, stdin)) {
    int key = 0, value = 0;
    line[strcspn(line, "\n")] = 0;
    if (strncmp(line, "load ", 5) == 0) {
      printf("%s\n", load(line + 5));
    } else if (strcmp(line, "hello") == 0) {
      printf("%s\n", greeting());
    } else if (strncmp(line, "also ", 5) == 0) {  // another copy, loaded and never called
      printf("%s\n", dlopen(line + 5, RTLD_NOW) ? "loaded" : dlerror());
    } else if (strcmp(line, "unload") == 0) {
      printf("%s\n", unload());
    } else if (!module) {
      printf("no module\n");
    } else if (strcmp(line, "version") == 0) {
      printf("%d\n", version());
    } else if (sscanf(line, "put %d %d", &key, &value) == 2) {
      printf("%d\n", put(key, value));
    } else if (sscanf(line, "get %d", &key) == 1) {
      get(key, out, sizeof out);
      printf("%s\n", out);
    } else {
      printf("?\n");
    }
  }
  return 0;
}
