// Test target for objects that outgrow their allocation: a list, a hash table
// and a tree whose structs the next version enlarges beyond what malloc gave
// each object, so they must move. One command per line on stdin:
//   build N   N list items, N hash entries (in a heap array of buckets), N tree nodes
//   dump      every value, in the same words in every version
//   bump      walks everything and changes every value
//   grow      reallocs every list item to 5000 bytes
//   usable    malloc_usable_size of the first list item
//   free      frees everything
//   alias     the table's untyped cookie points to the first list item
//   cookie    the value of the item the cookie points to
//   hold      a thread keeps the first list item's address on its stack only (an
//             untyped local), blocked in read()
//   pin       the same, with the address of a field inside it
//   grasp     the same, typed (a struct item * local), in a register
//   touch     a thread calls touch(items) without end: it waits at touch's
//             entry (replaced by v2) with the first item, which moves, in rdi
//   touched   how many calls touch() got with another pointer than `items`
//   release   lets that thread go: it stores what it held in `held`; says whether
//             that is the first list item
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct item {  // 48 bytes: moves (its block has 24)
  struct item* next;
  long key;
  long value;
  char label[24];
};

struct entry {  // 32 bytes: moves
  struct entry* next;
  int key;
  int value;
  long hits;
  double average;
};

struct tnode {  // 32 bytes: moves
  struct tnode *left, *right;
  int key;
  int depth;
  long visits;
};

struct table {  // unchanged: a heap object with a heap array of pointers to entries
  struct entry** buckets;
  unsigned nbuckets;
  void* cookie;
};

static struct item* items;
static struct table* table;
static struct tnode* tree;
struct tnode* last_node;  // a second reference to one tree node
struct item* held;  // typed: an untyped global that may hold an item would be asked about (GRAFT_GLOBAL_POINTS_TO)

static struct tnode* insert(struct tnode* t, int key) {
  if (!t) {
    t = calloc(1, sizeof *t);
    t->key = key;
    last_node = t;
    return t;
  }
  if (key < t->key) t->left = insert(t->left, key);
  else t->right = insert(t->right, key);
  return t;
}

static void build(int n) {
  if (!table) {
    table = calloc(1, sizeof *table);
    table->nbuckets = 16;
    table->buckets = calloc(table->nbuckets, sizeof *table->buckets);
  }
  for (int i = 0; i < n; i++) {
    struct item* a = malloc(sizeof *a);
    a->key = i;
    a->value = 10 * i;
    a->next = items;
    items = a;
    struct entry* e = malloc(sizeof *e);
    e->key = 100 + i;
    e->value = 1000 + i;
    e->next = table->buckets[e->key % table->nbuckets];
    table->buckets[e->key % table->nbuckets] = e;
    tree = insert(tree, (i * 7919) % 1000);
  }
}

static void print_tree(const struct tnode* t) {
  if (!t) return;
  print_tree(t->left);
  printf(" %d", t->key);
  print_tree(t->right);
}

static void dump(void) {
  printf("items");
  for (const struct item* a = items; a; a = a->next) printf(" %ld:%ld", a->key, a->value);
  printf(" entries");
  if (table)
    for (unsigned b = 0; b < table->nbuckets; b++)
      for (const struct entry* e = table->buckets[b]; e; e = e->next) printf(" %d:%d", e->key, e->value);
  printf(" tree");
  print_tree(tree);
  printf(" last %d\n", last_node ? last_node->key : -1);
}

static void bump_tree(struct tnode* t) {
  if (!t) return;
  bump_tree(t->left);
  t->key += 1000;
  t->visits++;
  bump_tree(t->right);
}

static void bump(void) {
  for (struct item* a = items; a; a = a->next) {
    a->value += 1;
    snprintf(a->label, sizeof a->label, "item %ld", a->key);  // the new fields are usable
  }
  if (table)
    for (unsigned b = 0; b < table->nbuckets; b++)
      for (struct entry* e = table->buckets[b]; e; e = e->next) {
        e->value += 2;
        e->hits++;
      }
  bump_tree(tree);
}

static void grow(void) {
  for (struct item** link = &items; *link; link = &(*link)->next) *link = realloc(*link, 5000);
}

static void free_tree(struct tnode* t) {
  if (!t) return;
  free_tree(t->left);
  free_tree(t->right);
  free(t);
}

static void free_all(void) {
  while (items) {
    struct item* next = items->next;
    free(items);
    items = next;
  }
  if (table) {
    for (unsigned b = 0; b < table->nbuckets; b++)
      while (table->buckets[b]) {
        struct entry* next = table->buckets[b]->next;
        free(table->buckets[b]);
        table->buckets[b] = next;
      }
    free(table->buckets);
    free(table);
    table = NULL;
  }
  free_tree(tree);
  tree = NULL;
  last_node = NULL;
}

static int hold_pipe[2];
static pthread_t holder;

static void* holder_thread(void* arg) {
  void* volatile mine = arg;  // untyped, and in memory: only this frame holds it
  char c;
  while (read(hold_pipe[0], &c, 1) < 0) {
  }
  held = mine;
  return NULL;
}

// The same, typed: a struct item * the frame keeps in a callee-saved register.
__attribute__((noinline)) static struct item* first_item(void) { return items; }

static void* grasp_thread(void* arg) {
  (void)arg;
  struct item* mine = first_item();
  char c;
  while (read(hold_pipe[0], &c, 1) < 0) {
  }
  held = mine;
  return NULL;
}

// Reads `items` afresh for every call, and leaves no copy of it in a
// register between calls: only the argument register holds it, where DWARF
// says a typed local or touch's parameter is.
static volatile long touches, stale_touches;
__attribute__((noinline)) static void touch(struct item* a) {
  if (a != items) stale_touches++;
  touches += 2;
}

static void* toucher_thread(void* arg) {
  (void)arg;
  for (;;) {
    struct item* a = items;  // a local DWARF places in rdi up to the call
    touch(a);
    __asm__ volatile("xor %%edi, %%edi" : : : "rdi");
  }
  return NULL;
}

__attribute__((noinline)) static void handle(const char* line) {
  if (!strncmp(line, "build ", 6)) {
    build(atoi(line + 6));
    printf("built\n");
  } else if (!strncmp(line, "dump", 4)) {
    dump();
  } else if (!strncmp(line, "bump", 4)) {
    bump();
    printf("bumped\n");
  } else if (!strncmp(line, "grow", 4)) {
    grow();
    printf("grown\n");
  } else if (!strncmp(line, "usable", 6)) {
    printf("%zu\n", items ? malloc_usable_size(items) : 0);
  } else if (!strncmp(line, "free", 4)) {
    free_all();
    printf("freed\n");
  } else if (!strncmp(line, "cookie", 6)) {
    const struct item* it = table ? table->cookie : NULL;
    printf("%ld\n", it ? (long)it->value : -1L);
  } else if (!strncmp(line, "alias", 5)) {
    if (table) table->cookie = items;
    printf("aliased\n");
  } else if (!strncmp(line, "hold", 4) || !strncmp(line, "pin", 3)) {
    void* what = line[0] == 'h' ? (void*)items : (void*)&items->value;
    if (items && pipe(hold_pipe) == 0 && pthread_create(&holder, NULL, holder_thread, what) == 0) printf("held\n");
    else printf("cannot\n");
  } else if (!strncmp(line, "grasp", 5)) {
    if (items && pipe(hold_pipe) == 0 && pthread_create(&holder, NULL, grasp_thread, NULL) == 0) printf("held\n");
    else printf("cannot\n");
  } else if (!strncmp(line, "touched", 7)) {
    printf("stale %ld\n", stale_touches);
  } else if (!strncmp(line, "touch", 5)) {
    pthread_t t;
    if (pthread_create(&t, NULL, toucher_thread, NULL) == 0 && pthread_detach(t) == 0) printf("touching\n");
    else printf("cannot\n");
  } else if (!strncmp(line, "release", 7)) {
    char c = 'x';
    if (write(hold_pipe[1], &c, 1) == 1 && pthread_join(holder, NULL) == 0)
      printf("%s\n", held == (void*)items ? "the first item" : "another address");
  } else if (!strncmp(line, "v", 1)) {
    printf("2\n");
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
