// Test target for heap type tags where the records' names are not enough
// (graft-cc --graft-heap-types=on): tally.c defines a struct conn of its own,
// other than main.c's (as hiredis's struct dict beside redis's), made
// through an allocator table (tally.h) and kept in a void *; a struct
// whose tag ID is struct conn's is cast from a function that is not fresh
// (its tag never fires); and the jobs' presets are a global array clang
// gives a type of its own, cast to struct job * in an initializer. None of
// them may stop main.c's connections, which the release grows, from being
// told by their tags; and a union's void * into the newest one must follow
// it where it moves, as must a union with a pointer to it beside numbers.
// One command per line on stdin:
//   open N    N more connections (made through a table: no record tells the list's values)
//   add N     N more jobs
//   load      one more job, through load_item
//   tally N   count N hits in tally.c's own struct conn
//   dump      every connection, job and the tally, the same words in every version
//   v         the version
#include <graft/graft.h>
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

struct conn {
  int fd;
#if VERSION >= 2
  char name[24];  // v2: the connection outgrows its block and moves
#endif
  long served;
};

// A job may also be a preset: a global array whose union clang initializes
// through a type of its own.
struct job {
  long id;
  union {
    long count;
    double weight;
  } u;
  void* owner;
};

struct job presets[] = {{.id = -1, .u.weight = 0.5, .owner = NULL}};
struct job* first_preset = presets;

// The newest connection's entry: a union of a void * and numbers (redis's
// dictEntry.v) holds it, and must follow it when it moves.
struct entry {
  long key;
  union {
    void* val;
    long n;
    double d;
  } v;
};
struct entry* newest;

// Slots whose union may hold a connection, a count or a job (redis's
// CallReply.val, RedisModuleKey.u): no member says which, so with tags each
// word is followed where the block it points to is tagged as what it names.
struct slot {
  int kind;
  union {
    struct conn* conn;
    long count;
    struct {
      long n;
      void* any;
    } raw;
  } u;
};
struct slot slots[3];

struct list conns, jobs;
long opened;

// Defined in tally.c.
void tally_hit(long n, void* owner);
long tally_total(void);
void* tally_owner(void);
long peer_count(void);
void tally_set_allocators(void* (*alloc)(size_t), void (*release)(void*));

// Not fresh memory: tally.c's cast of it carries a tag that never fires.
static long peer_slab[4];
void* peer_slot(void) { return &peer_slab[opened % 4]; }

static void list_add(struct list* l, void* value) {
  struct lnode* n = malloc(sizeof *n);
  n->value = value;
  n->next = l->head;
  l->head = n;
  l->len++;
}

static void* new_conn(void) {
  struct conn* c = malloc(sizeof *c);
  memset(c, 0, sizeof *c);
  c->fd = (int)opened++;
  c->served = 100 + c->fd;
  slots[0].u.conn = c;
  slots[1].u.count = 40 + c->fd;
  if (!newest) newest = malloc(sizeof *newest);
  newest->key = c->fd;
  newest->v.val = c;
  return c;
}

static void* new_job(void) {
  struct job* j = malloc(sizeof *j);
  j->id = jobs.len;
  j->u.count = 10 * jobs.len;
  j->owner = conns.head ? conns.head->value : NULL;
  slots[2].kind = 2;
  slots[2].u.raw.n = j->id;
  slots[2].u.raw.any = j;
  return j;
}

// A job, or (plain) a raw buffer, as one asks (redis's
// rdbGenericLoadStringObject): a cast of what it returns to a job does not
// tell the tags which (GRAFT_RETYPES(load_item, job) says load_job's does).
__attribute__((noinline)) void* load_item(int plain) {
  if (plain) return malloc(16);
  return new_job();
}
__attribute__((noinline)) struct job* load_job(void) { return load_item(0); }

// What no record can follow: the maker is called through a pointer.
static void* (*const makers[])(void) = {new_conn, new_job};

int main(void) {
#ifdef SET_ALLOCATORS
  tally_set_allocators(malloc, free);
#endif
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    int n = 0;
    if (sscanf(line, "open %d", &n) == 1) {
      for (int i = 0; i < n; i++) list_add(&conns, makers[0]());
      printf("opened\n");
    } else if (sscanf(line, "add %d", &n) == 1) {
      for (int i = 0; i < n; i++) list_add(&jobs, makers[1]());
      printf("added\n");
    } else if (strncmp(line, "load", 4) == 0) {
      list_add(&jobs, load_job());
      printf("loaded\n");
    } else if (sscanf(line, "tally %d", &n) == 1) {
      tally_hit(n, conns.head ? conns.head->value : NULL);
      printf("tallied\n");
    } else if (strncmp(line, "dump", 4) == 0) {
      printf("conns");
      for (struct lnode* l = conns.head; l; l = l->next) {
        const struct conn* c = l->value;
        printf(" %d:%ld", c->fd, c->served);
      }
      printf(" jobs");
      for (struct lnode* l = jobs.head; l; l = l->next) {
        const struct job* j = l->value;
        printf(" %ld:%ld:%d", j->id, j->u.count, j->owner ? ((const struct conn*)j->owner)->fd : -1);
      }
      printf(" slots %ld %ld %ld", slots[0].u.conn ? slots[0].u.conn->served : -1L, slots[1].u.count,
             slots[2].u.raw.any ? ((const struct job*)slots[2].u.raw.any)->u.count : -1L);
      const struct conn* last = newest ? newest->v.val : NULL;
      const struct conn* owner = tally_owner();
      printf(" newest %ld:%ld preset %ld tally %ld owner %ld peers %ld\n", newest ? newest->key : -1L,
             last ? last->served : -1L, first_preset->id, tally_total(), owner ? owner->served : -1L, peer_count());
    } else if (strncmp(line, "v", 1) == 0) {
      printf("%d\n", VERSION);
    } else {
      printf("?\n");
    }
    fflush(stdout);
  }
  return 0;
}
