// Test target for graft-cc's member facts: the jobs live only behind a
// generic list's void * values and the connections only behind an event
// loop's void * client data, and no directive says so. The same source in
// every version (common/, with vN/types.h). A worker thread walks the jobs all the
// time. One command per line on stdin:
//   add N     N more jobs on the list
//   open N    N more connections in the event loop
//   fire      every connection's event procedure runs once
//   dump      every job and connection, in the same words in every version
//   walks     whether the worker has walked the list since the last ask
//   v         the version
#include <dlfcn.h>
#include <graft/graft.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ev.h"
#include "list.h"
// types.h, this version's, is included first by vN/main.c.

struct list jobs;
struct loop loop;
struct stash stash;
FILE* log_file;  // glibc's FILE has void * members (_lock, _freeres_buf) the program never writes
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

// Untyped members the records settle without a word from the user: a
// function's result (list_first returns a node), a library's handle
// (dlopen's), a string literal's or a function's address, and what memset
// writes (a context poisoned before it is freed, as hiredis's redisFree does).
struct handler {
  void* userdata;
};
struct plugin {
  void* handle;
  void* label;  // a string literal's address
  void* entry;  // a function's
};
struct context {
  void* privdata;
  int fd;
};
struct handler handler;
struct plugin self_plugin;
struct context* spare;
long walked;

// Replaced by code not built with graft-cc (foreign/stash.c) when a test links it in.
__attribute__((weak)) void foreign_stash(struct stash* s, void* item) {
  (void)s;
  (void)item;
}

static void on_event(struct loop* l, int fd, void* client_data) {
  struct conn* c = client_data;
  c->served++;
  fprintf(log_file, "event %d on %p\n", fd, (void*)l);
}

static void add(int n) {
  handler.userdata = list_first(&jobs);
  for (int i = 0; i < n; i++) {
    struct job* j = malloc(sizeof *j);
    memset(j, 0, sizeof *j);
    j->id = (long)jobs.len;
    j->weight = 10 * (int)jobs.len;
    pthread_mutex_lock(&lock);
    list_add(&jobs, j);
    pthread_mutex_unlock(&lock);
    foreign_stash(&stash, j);
  }
}

static void open_conns(int n) {
  for (int i = 0; i < n && loop.count < 16; i++) {
    struct conn* c = calloc(1, sizeof *c);
    c->fd = loop.count;
    ev_add(&loop, c->fd, on_event, c);
  }
}

static void dump(void) {
  printf("jobs");
  pthread_mutex_lock(&lock);
  for (struct lnode* n = jobs.head; n; n = n->next) {
    const struct job* j = n->value;
    printf(" %ld:%d", j->id, j->weight);
#if VERSION >= 2
    printf(":%ld", j->priority);
#endif
  }
  pthread_mutex_unlock(&lock);
  printf(" conns");
  for (int fd = 0; fd < loop.count; fd++) {
    const struct conn* c = loop.events[fd].client_data;
    printf(" %d:%ld", c->fd, c->served);
#if VERSION >= 2
    printf(":%s", c->name);
#endif
  }
  printf("\n");
}

static void* worker(void* arg) {
  (void)arg;
  for (;;) {
    graft_update_point();
    long sum = 0;
    pthread_mutex_lock(&lock);
    for (struct lnode* n = jobs.head; n; n = n->next) sum += ((const struct job*)n->value)->id;
    walked++;
    pthread_mutex_unlock(&lock);
    if (sum < 0) abort();
    usleep(1000);
  }
  return NULL;
}

int main(void) {
  log_file = fopen("/dev/null", "w");
  self_plugin.handle = dlopen(NULL, RTLD_LAZY);
  self_plugin.label = "self";
  self_plugin.entry = (void*)dump;
  spare = calloc(1, sizeof *spare);
  struct context* gone = calloc(1, sizeof *gone);
  memset(gone, 0xff, sizeof *gone);
  free(gone);
  ev_init(&loop);
  pthread_t thread;
  pthread_create(&thread, NULL, worker, NULL);
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    int n = 0;
    if (sscanf(line, "add %d", &n) == 1) {
      add(n);
      printf("added\n");
    } else if (sscanf(line, "open %d", &n) == 1) {
      open_conns(n);
      printf("opened\n");
    } else if (strncmp(line, "fire", 4) == 0) {
      ev_fire(&loop);
      printf("fired\n");
    } else if (strncmp(line, "dump", 4) == 0) {
      dump();
    } else if (strncmp(line, "walks", 5) == 0) {
      pthread_mutex_lock(&lock);
      printf("%s\n", walked > 0 ? "walking" : "still");
      walked = 0;
      pthread_mutex_unlock(&lock);
    } else if (line[0] == 'v') {
      printf("%d\n", VERSION);
    } else {
      printf("?\n");
    }
    fflush(stdout);
  }
  return 0;
}
