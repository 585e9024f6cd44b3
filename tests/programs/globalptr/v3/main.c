// Test target: a global whose struct grows holds settings that a static
// table points into (redis's config table: {"port", &server.port}), as do
// a pointer the program keeps in a global and one in a heap object. The
// update gives the global new storage; every one of those pointers must
// follow it to the same member, or "s port 9" would set the old copy.
// One command per line:
//   s NAME V  set a setting through the table     p  version and settings, read directly
//   c NAME V  set a setting through the heap copy of the table
//   l         the last setting set, through the pointer kept to it
//   h         the port, through the heap object's pointer to the settings
//   w         a thread starts reading a name into cfg.name from a pipe
//   n NAME    NAME goes down the pipe; the thread ends; cfg.name
// struct settings is only ever the global cfg (graft-cc's records say so),
// so the heap object's void * cannot hide one and graft diff asks nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

struct settings {
  long id; // new, first: port moves, and &cfg.port is also &cfg
  int port;
  int verbose;
  char name[16];
};
struct settings cfg = {7, 8080, 0};

struct option {
  const char *name;
  int *value;
};
static struct option options[] = {{"port", &cfg.port}, {"verbose", &cfg.verbose}};

static struct option *copies;  // the table copied into the heap, as redis registers each config
static int *last_set;
struct holder {
  struct settings *settings;
  void *cookie;  // what graft-cc cannot follow (strdup's result): no struct settings can be there
};
static struct holder *holder;

// A thread that reads into the buffer it is given (cfg.name): its frames
// are in code no version changes, and while it waits in read() it holds
// the address in a register.
static int name_pipe[2];
static pthread_t name_thread;
static void *read_name(void *buffer) {
  ssize_t n = read(name_pipe[0], buffer, 15);
  (void)n;
  return NULL;
}

__attribute__((noinline)) static int version(void) { return 3; }

__attribute__((noinline)) static void handle(const char *line) {
  char name[32];
  int v;
  if (line[0] == 's' && sscanf(line + 2, "%31s %d", name, &v) == 2) {
    for (unsigned i = 0; i < sizeof options / sizeof *options; ++i)
      if (!strcmp(options[i].name, name)) *(last_set = options[i].value) = v;
    printf("ok\n");
  } else if (line[0] == 'c' && sscanf(line + 2, "%31s %d", name, &v) == 2) {
    for (unsigned i = 0; i < sizeof options / sizeof *options; ++i)
      if (!strcmp(copies[i].name, name)) *copies[i].value = v;
    printf("ok\n");
  } else if (line[0] == 'w') {
    if (pipe(name_pipe) == 0 && pthread_create(&name_thread, NULL, read_name, cfg.name) == 0) printf("waiting\n");
    else printf("failed\n");
  } else if (line[0] == 'n') {
    ssize_t n = write(name_pipe[1], line + 2, strcspn(line + 2, "\n"));
    (void)n;
    pthread_join(name_thread, NULL);
    printf("named %s\n", cfg.name);
  } else if (line[0] == 'p') {
    printf("%d %d %d\n", version(), cfg.port, cfg.verbose);
  } else if (line[0] == 'l') {
    printf("%d\n", last_set ? *last_set : -1);
  } else if (line[0] == 'h') {
    printf("%d\n", holder->settings->port);
  } else {
    printf("?\n");
  }
  fflush(stdout);
}

int main(void) {
  copies = malloc(sizeof options);
  memcpy(copies, options, sizeof options);
  holder = malloc(sizeof *holder);
  holder->settings = &cfg;
  holder->cookie = strdup("cookie");
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) handle(line);
  return 0;
}
