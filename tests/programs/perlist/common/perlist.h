// Test target: one generic list (struct lnode's void * value) holds three
// structs, each in lists of its own: the jobs (a global list), the
// connections (a list the server points to) and each connection's notes (a
// list a connection points to). No typed pointer reaches a connection or a
// note, and nothing is declared: graft-cc's records of every list_add call
// say which list holds what. The same source in every version (common/perlist.h,
// vN/main.c defines VERSION). A worker thread walks the connections all the time.
// One command per line on stdin:
//   add N     N more jobs
//   open N    N more connections, each with two notes
//   dump      every job, connection and note, in the same words in every version
//   walks     whether the worker has walked the connections since the last ask
//   share     links the last job's node into the connections' list too (a
//             program that breaks what the records say: graft must refuse)
//   v         the version
#include <graft/graft.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "list.h"

struct job {
  long id;
  int weight;
};

struct conn {
  int fd;
  long served;
#if VERSION >= 2
  long bytes;  // v2
#endif
  struct list* notes;
};

struct note {
  int line;
#if VERSION >= 2
  char tag[16];  // v2: the note outgrows its block and moves
#endif
  long stamp;
};

struct server {
  struct list* conns;
  long opened;
};

struct list jobs;
struct server srv;
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
long walked;

static void add(int n) {
  for (int i = 0; i < n; i++) {
    struct job* j = calloc(1, sizeof *j);
    j->id = (long)jobs.len;
    j->weight = 10 * (int)jobs.len;
    list_add(&jobs, j);
  }
}

static void open_conns(int n) {
  for (int i = 0; i < n; i++) {
    struct conn* c = calloc(1, sizeof *c);
    c->fd = (int)srv.opened++;
    c->served = 100 + c->fd;
    c->notes = list_create();
    for (int k = 0; k < 2; k++) {
      struct note* note = calloc(1, sizeof *note);
      note->line = 10 * c->fd + k;
      note->stamp = 1000 + note->line;
      list_add(c->notes, note);
    }
    pthread_mutex_lock(&lock);
    list_add(srv.conns, c);
    pthread_mutex_unlock(&lock);
  }
}

static void dump(void) {
  printf("jobs");
  for (struct lnode* n = jobs.head; n; n = n->next) {
    const struct job* j = n->value;
    printf(" %ld:%d", j->id, j->weight);
  }
  printf(" conns");
  pthread_mutex_lock(&lock);
  for (struct lnode* n = srv.conns->head; n; n = n->next) {
    const struct conn* c = n->value;
    printf(" %d:%ld", c->fd, c->served);
#if VERSION >= 2
    printf(":%ld", c->bytes);
#endif
    for (struct lnode* m = c->notes->head; m; m = m->next) {
      const struct note* note = m->value;
      printf("/%d:%ld", note->line, note->stamp);
#if VERSION >= 2
      printf(":%s", note->tag);
#endif
    }
  }
  pthread_mutex_unlock(&lock);
  printf("\n");
}

static void* worker(void* arg) {
  (void)arg;
  for (;;) {
    graft_update_point();
    long sum = 0;
    pthread_mutex_lock(&lock);
    for (struct lnode* n = srv.conns->head; n; n = n->next) sum += ((const struct conn*)n->value)->served;
    walked++;
    pthread_mutex_unlock(&lock);
    if (sum < 0) abort();
    usleep(1000);
  }
  return NULL;
}

int main(void) {
  srv.conns = list_create();
  pthread_t thread;
  pthread_create(&thread, NULL, worker, NULL);
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  long seen = 0;
  while (fgets(line, sizeof line, stdin)) {
    int n = 0;
    if (sscanf(line, "add %d", &n) == 1) {
      add(n);
      printf("added\n");
    } else if (sscanf(line, "open %d", &n) == 1) {
      open_conns(n);
      printf("opened\n");
    } else if (strncmp(line, "dump", 4) == 0) {
      dump();
    } else if (strncmp(line, "walks", 5) == 0) {
      pthread_mutex_lock(&lock);
      printf("%s\n", walked > seen ? "walking" : "idle");
      seen = walked;
      pthread_mutex_unlock(&lock);
    } else if (strncmp(line, "share", 5) == 0) {
      // The last job's node, linked at the end of the connections' list as
      // well: a job where the records say only connections are.
      struct lnode* last_job = jobs.head;
      while (last_job && last_job->next) last_job = last_job->next;
      pthread_mutex_lock(&lock);
      struct lnode* last = srv.conns->head;
      while (last && last->next) last = last->next;
      if (last && last_job) last->next = last_job;
      pthread_mutex_unlock(&lock);
      printf("shared\n");
    } else if (strncmp(line, "v", 1) == 0) {
      printf("%d\n", VERSION);
    } else {
      printf("?\n");
    }
    fflush(stdout);
  }
  return 0;
}
