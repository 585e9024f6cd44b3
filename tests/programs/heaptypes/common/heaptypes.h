// Test target for heap type tags (graft-cc --graft-heap-types=on): one
// generic list type (struct lnode's void * value, as redis's adlist) holds
// connections and jobs, and no record can tell which: every item is made
// by a maker called through a table of function pointers, and added to a
// list chosen at run time. Built without tags, graft diff says no
// declaration can make an update safe; built with them, each value is told
// by its block's tag at the commit. A second list holds the address of
// each connection's `st`, a struct held inside it (an interior pointer):
// the release moves `st` inside the connection, so those words must follow,
// as must each connection's `cursor`, a char * into its own `tag`, and
// the registry's words (a growable array of void *).
// The same source in every version (vN/main.c defines VERSION). A worker
// thread walks the connections all the time. One command per line on stdin:
//   add N     N more jobs
//   open N    N more connections
//   close     frees the newest connection (its tag must go with it)
//   hide      the newest connection, taken off every list and kept only as
//             an integer no record shows (graft must refuse: it is a
//             connection no pointer graft follows reaches)
//   dump      every job and connection, the same words in every version
//   stats     every connection's stats, read through the interior pointers
//   garble    leaves the address of another connection in the newest one's spare and note, as
//             garbage a block's last use leaves (graft must not refuse, nor follow it as a pointer)
//   park      a thread holds the newest connection off the 8-byte grid on its stack, blocked
//   unpark    that thread reads the connection's served count through it
//   walks     whether the worker has walked the connections since the last ask
//   v         the version
#include <graft/graft.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lnode {
  struct lnode* next;
  void* value;
};

struct list {
  struct lnode* head;
  long len;
};

struct job {
  long id;
  int weight;
};

struct stats {
  long served;
  long errors;
};

struct conn {
  int fd;
#if VERSION >= 2
  char name[24];  // v2: before `st`, which moves inside the connection; the connection outgrows its block
#endif
  struct stats st;
  char tag[8];
  char* cursor;  // into its own tag: a typed pointer into the middle of the connection, which must follow it
  long spare;    // only numbers are stored here (graft-cc's records say so); `garble` leaves an address in it
  char note[16];  // text; `garble` leaves an address in it too, as a block's last use may (redis's client.replid)
};

struct list jobs, conns, watched;  // watched: &conn->st of every connection

// Every connection again, in a growable array of void * (beanstalkd's ms):
// an array no typed pointer describes, whose words must follow the
// connections that move.
struct registry {
  long len, cap;
  void** items;
} registry;

static void registry_add(void* item) {
  if (registry.len == registry.cap) {
    registry.cap = registry.cap ? 2 * registry.cap : 4;
    registry.items = realloc(registry.items, (size_t)registry.cap * sizeof *registry.items);
  }
  registry.items[registry.len++] = item;
}
pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
long walked, opened;
uintptr_t hidden;

static void list_add(struct list* l, void* value) {
  struct lnode* n = malloc(sizeof *n);
  n->value = value;
  n->next = l->head;
  l->head = n;
  l->len++;
}

static void* list_pop(struct list* l) {
  struct lnode* n = l->head;
  if (!n) return NULL;
  l->head = n->next;
  l->len--;
  void* value = n->value;
  free(n);
  return value;
}

static void* new_job(void) {
  struct job* j = calloc(1, sizeof *j);
  j->id = jobs.len;
  j->weight = 10 * (int)jobs.len;
  return j;
}

// A realloc wrapper that returns its own parameter (redis's zrealloc),
// in a file of its own (vN/regrow.c, as zmalloc.c): fresh memory all the
// same, so a cast of its result is tagged, where that file's flag is linked
// in (the new code's casts too, after an update).
void* regrow(void* block, size_t size);

static void* new_conn(void) {
  struct conn* c = regrow(NULL, sizeof *c);
  memset(c, 0, sizeof *c);
  c->fd = (int)opened++;
  c->st.served = 100 + c->fd;
  c->st.errors = c->fd % 3;
  strcpy(c->tag, "abcdefg");
  c->cursor = c->tag + c->fd % 4;
  return c;
}

// What no record can follow: the maker is called through a pointer, and the list is chosen at run time.
static void* (*const makers[])(void) = {new_job, new_conn};

static void make(int kind, int n) {
  for (int i = 0; i < n; i++) {
    void* item = makers[kind]();
    pthread_mutex_lock(&lock);
    list_add(kind ? &conns : &jobs, item);
    if (kind) {
      list_add(&watched, &((struct conn*)conns.head->value)->st);
      registry_add(conns.head->value);
    }
    pthread_mutex_unlock(&lock);
  }
}

// `park`: a thread blocks in read() holding the newest connection's address
// on its stack off the 8-byte grid (as in an epoll_event epoll_wait has just
// filled: packed, its data after 4 bytes); `unpark` lets it read the
// connection's served count through it. The word must follow the connection.
static int park_pipe[2], parked_pipe[2];

__attribute__((noinline)) static void report(void* held) {
  const long served = ((struct conn*)held)->st.served;
  (void)!write(parked_pipe[1], &served, sizeof served);
}

static void* parker(void* arg) {
  // Bytes, not a struct: the frame holds no typed pointer graft could take as a root.
  unsigned char held[16] __attribute__((aligned(8))) = {7};
  memcpy(held + 4, &arg, sizeof arg);
  arg = NULL;
  __asm__ volatile("" : "+r"(arg) : "r"(held) : "memory");
  char byte = 0;
  (void)!write(parked_pipe[1], &byte, 1);  // parked
  (void)!read(park_pipe[0], &byte, 1);
  __asm__ volatile("" : : "r"(held) : "memory");
  void* c;
  memcpy(&c, held + 4, sizeof c);
  report(c);
  return NULL;
}

static void dump(void) {
  printf("jobs");
  for (struct lnode* n = jobs.head; n; n = n->next) {
    const struct job* j = n->value;
    printf(" %ld:%d", j->id, j->weight);
  }
  printf(" conns");
  pthread_mutex_lock(&lock);
  for (struct lnode* n = conns.head; n; n = n->next) {
    const struct conn* c = n->value;
    printf(" %d:%ld:%ld:%c@%d", c->fd, c->st.served, c->st.errors, *c->cursor, (int)(c->cursor - c->tag));
#if VERSION >= 2
    printf(":%s", c->name);
#endif
  }
  printf(" registry");
  for (long k = 0; k < registry.len; k++) printf(" %ld", ((const struct conn*)registry.items[k])->st.served);
  pthread_mutex_unlock(&lock);
  printf("\n");
}

static void* worker(void* arg) {
  (void)arg;
  for (;;) {
    graft_update_point();
    long sum = 0;
    pthread_mutex_lock(&lock);
    for (struct lnode* n = conns.head; n; n = n->next) sum += ((const struct conn*)n->value)->st.served;
    walked++;
    pthread_mutex_unlock(&lock);
    if (sum < 0) abort();
    usleep(1000);
  }
  return NULL;
}

int main(void) {
  pthread_t thread;
  pthread_create(&thread, NULL, worker, NULL);
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  long seen = 0;
  while (fgets(line, sizeof line, stdin)) {
    int n = 0;
    if (sscanf(line, "add %d", &n) == 1) {
      make(0, n);
      printf("added\n");
    } else if (sscanf(line, "open %d", &n) == 1) {
      make(1, n);
      printf("opened\n");
    } else if (strncmp(line, "close", 5) == 0 || strncmp(line, "hide", 4) == 0) {
      pthread_mutex_lock(&lock);
      struct conn* c = list_pop(&conns);
      list_pop(&watched);
      registry.items[--registry.len] = NULL;  // the newest connection is the array's last
      pthread_mutex_unlock(&lock);
      if (line[0] == 'c') {
        free(c);
        printf("closed\n");
      } else {
        hidden = (uintptr_t)c ^ 0x5a5a;
        printf("hidden\n");
      }
    } else if (strncmp(line, "park", 4) == 0 && conns.head) {
      pthread_t t;
      char byte;
      if (pipe(park_pipe) || pipe(parked_pipe) || pthread_create(&t, NULL, parker, conns.head->value)) abort();
      pthread_detach(t);
      (void)!read(parked_pipe[0], &byte, 1);
      printf("parked\n");
    } else if (strncmp(line, "unpark", 6) == 0) {
      long served = -1;
      (void)!write(park_pipe[1], "x", 1);
      (void)!read(parked_pipe[0], &served, sizeof served);
      printf("%ld\n", served);
    } else if (strncmp(line, "garble", 6) == 0 && conns.head && conns.head->next) {
      // What a block's last use left in members never set: the address of another connection.
      unsigned char* raw = conns.head->value;
      const uintptr_t other = (uintptr_t)conns.head->next->value + 8;
      memcpy(raw + offsetof(struct conn, spare), &other, sizeof other);
      memcpy(raw + offsetof(struct conn, note) + 8, &other, sizeof other);
      printf("garbled\n");
    } else if (strncmp(line, "dump", 4) == 0) {
      dump();
    } else if (strncmp(line, "stats", 5) == 0) {
      pthread_mutex_lock(&lock);
      for (struct lnode* n = watched.head; n; n = n->next) {
        const struct stats* s = n->value;
        printf("%s%ld/%ld", n == watched.head ? "" : " ", s->served, s->errors);
      }
      pthread_mutex_unlock(&lock);
      printf("\n");
    } else if (strncmp(line, "walks", 5) == 0) {
      pthread_mutex_lock(&lock);
      printf("%s\n", walked > seen ? "walking" : "idle");
      seen = walked;
      pthread_mutex_unlock(&lock);
    } else if (strncmp(line, "v", 1) == 0) {
      printf("%d\n", VERSION);
    } else {
      printf("?\n");
    }
    fflush(stdout);
  }
  return 0;
}
