// Test target for data changes: live data of every shape whose types the
// next version changes. One command per line on stdin:
//   build N   makes N keys: a list, a hash table, a tree, a heap array of
//             holders (each embedding a node), a global array
//   hold      starts a thread whose frame alone points to a node
//   grip      the same, the pointer inside a struct in the frame
//   release   lets it go: the node joins the list
//   dump      prints every value, in the same words in every version
//   touch     counts through the static local and the globals
//   spin N    starts N threads that count in unchanged code; spins: their count
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum color { BLACK, RED, GREEN, BLUE };  // renumbered: mapped by name

struct point {
  int x, y;
};

struct node {  // 56 bytes: gains weight, loses junk, reorders, retypes count and score, widens level
  struct node* next;
  long weight;
  char name[16];
  long long count;
  enum color color;
  unsigned level : 7;
  unsigned flags : 3;
  float score;
  int spare;
};

struct tree {
  struct tree *left, *right;
  char history[64];  // grows by 64 bytes: no room in its allocation
  int height;
  long long key;
  struct point where;
};

struct holder {
  int tag;
  struct point p;
  struct node inner;  // embedded: it changes with struct node
};

struct stats {
  unsigned long hits;
  double ratio;
  int misses;
};

static struct node* list_head;
struct node* table[8];  // chains by count % 8
static struct tree* root;
struct holder holders[4];  // a global array of structs, each embedding a node
int nholders;
struct point corners[2] = {{1, 2}, {3, 4}};
struct stats stats = {.hits = 5, .ratio = 0.5, .misses = 7};  // ratio: from the new initialiser
static long counter = 3;

static struct node* make_node(int i) {
  struct node* n = malloc(sizeof *n);
  memset(n, 0, sizeof *n);
  n->count = i;
  snprintf(n->name, sizeof n->name, "n%d", i);
  n->color = (enum color)(i % 3);
  n->flags = (unsigned)i % 8;
  n->level = (unsigned)i % 32;
  n->score = i * 1.5;
  return n;
}

static struct tree* insert(struct tree* t, int key) {
  if (!t) {
    t = calloc(1, sizeof *t);
    t->key = key;
    t->where.x = key;
    t->where.y = -key;
    return t;
  }
  if (key < t->key) t->left = insert(t->left, key);
  else t->right = insert(t->right, key);
  return t;
}

static void print_node(const char* what, const struct node* n) {
  const char* color = n->color == RED ? "red" : n->color == GREEN ? "green" : "blue";
  printf(" %s:%lld:%s:%s:%u:%u:%.1f", what, (long long)n->count, n->name, color, n->flags, n->level, (double)n->score);
}

static void print_tree(const struct tree* t) {
  if (!t) return;
  print_tree(t->left);
  printf(" t%lld:%d:%d", (long long)t->key, t->where.x, t->where.y);
  print_tree(t->right);
}

static void build(int n) {
  for (int i = 0; i < n; i++) {
    struct node* a = make_node(i);
    a->next = list_head;
    list_head = a;
    struct node* b = make_node(100 + i);
    b->next = table[i % 8];
    table[i % 8] = b;
    root = insert(root, (i * 7919) % 1000);
  }
  nholders = 4;
  for (int i = 0; i < nholders; i++) {
    holders[i].tag = 1000 + i;
    holders[i].p.x = i;
    holders[i].p.y = 2 * i;
    struct node* t = make_node(200 + i);
    holders[i].inner = *t;
    holders[i].inner.next = NULL;
    free(t);
  }
}

static void dump(void) {
  printf("list");
  for (const struct node* n = list_head; n; n = n->next) print_node("l", n);
  printf(" table");
  for (int b = 0; b < 8; b++)
    for (const struct node* n = table[b]; n; n = n->next) print_node("h", n);
  printf(" tree");
  print_tree(root);
  printf(" holders");
  for (int i = 0; i < nholders; i++) {
    printf(" %d:%d:%d", holders[i].tag, holders[i].p.x, holders[i].p.y);
    print_node("i", &holders[i].inner);
  }
  printf(" corners %d %d %d %d stats %ld %d counter %d", corners[0].x, corners[0].y, corners[1].x, corners[1].y,
         (long)stats.hits, stats.misses, (int)counter);
  long extra = 0;
  for (const struct node* n = list_head; n; n = n->next) extra += n->weight + n->spare;
  for (const struct tree* t = root; t; t = t->left) extra += t->height;
  printf(" new %ld %.1f\n", extra, stats.ratio);
}

static int touch(void) {
  static int calls = 40;  // a function-local static
  calls++;
  counter++;
  stats.hits++;
  return calls;
}

// A thread whose frame alone points to a node, until told to let go.
static int hold_pipe[2];
static int ready_pipe[2];  // the thread says it holds what it holds: "hold" answers then
static pthread_t hold_thread;

static void say_ready(void) {
  char byte = 1;
  if (write(ready_pipe[1], &byte, 1) != 1) abort();
}

static void* holder_thread(void* arg) {
  (void)arg;
  // More pointers than callee-saved registers: some live in registers over
  // the wait, at least one in a stack slot.
  struct node* a = make_node(771);
  struct node* b = make_node(772);
  struct node* c = make_node(773);
  struct node* d = make_node(774);
  struct node* e = make_node(775);
  struct node* f = make_node(776);
  say_ready();
  char byte;
  while (read(hold_pipe[0], &byte, 1) < 0) {
  }
  a->next = list_head;  // let go: the nodes join the list
  b->next = a;
  c->next = b;
  d->next = c;
  e->next = d;
  f->next = e;
  list_head = f;
  return NULL;
}

// The same, but the pointer is inside a struct local (DWARF gives its place
// in pieces, if at all): graft cannot read it from the frame.
struct grip {
  struct node* node;
  long since;
};

static void* grip_thread(void* arg) {
  struct grip g = {make_node(888), (long)arg};
  say_ready();
  char c;
  while (read(hold_pipe[0], &c, 1) < 0) {
  }
  g.node->next = list_head;
  list_head = g.since ? g.node : NULL;
  return NULL;
}

// Threads that only count, in code no version changes: they are stopped
// wherever they are while an update (and its transformers) runs.
static volatile long spins;

static void* spinner(void* arg) {
  (void)arg;
  for (;;) spins++;
  return NULL;
}

// One command; main's loop stays the same in every version (it never returns).
__attribute__((noinline)) static void handle(const char* line) {
  if (!strncmp(line, "build ", 6)) {
    build(atoi(line + 6));
    printf("built\n");
  } else if (!strncmp(line, "hold", 4)) {
    pthread_t t;
    char ready;
    if (pipe(hold_pipe) == 0 && pipe(ready_pipe) == 0 && pthread_create(&t, NULL, holder_thread, NULL) == 0 &&
        read(ready_pipe[0], &ready, 1) == 1)
      hold_thread = t;
    printf("held\n");
  } else if (!strncmp(line, "grip", 4)) {
    pthread_t t;
    char ready;
    if (pipe(hold_pipe) == 0 && pipe(ready_pipe) == 0 && pthread_create(&t, NULL, grip_thread, (void*)1) == 0 &&
        read(ready_pipe[0], &ready, 1) == 1)
      hold_thread = t;
    printf("gripped\n");
  } else if (!strncmp(line, "release", 7)) {
    char c = 1;
    if (write(hold_pipe[1], &c, 1) == 1) pthread_join(hold_thread, NULL);
    printf("released\n");
  } else if (!strncmp(line, "spins", 5)) {
    printf("%ld\n", (long)spins);
  } else if (!strncmp(line, "spin ", 5)) {
    for (int i = atoi(line + 5); i > 0; i--) {
      pthread_t t;
      if (pthread_create(&t, NULL, spinner, NULL) == 0) pthread_detach(t);
    }
    printf("spinning\n");
  } else if (!strncmp(line, "dump", 4)) {
    dump();
  } else if (!strncmp(line, "touch", 5)) {
    printf("%d\n", touch());
  } else if (!strncmp(line, "v", 1)) {
    printf("3\n");
  }
  fflush(stdout);
}

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) handle(line);
  return 0;
}
