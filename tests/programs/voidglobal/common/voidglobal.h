// Test target: a changed struct reached only through globals that are
// themselves void *. `keep` holds what make() returns (a struct eng made
// another type on its way out): graft-cc's records say it holds a struct
// eng, and graft follows it. `spare` holds what a call through a pointer
// returns, which no record can tell: graft diff asks, and
// GRAFT_GLOBAL_POINTS_TO(spare, eng) settles it. Before graft-cc recorded
// a pointer returned as void *, struct eng was taken to live in frames
// only, and the update applied and left it in the old layout. A struct
// cfg is made from memory first kept as void * (raw = malloc(...), then
// cast): the same, and `raw` is asked about too; so is a struct tag whose
// address only goes through a variadic call's `...` (kept in `logged`).
// One command per line: r (both engines' ip * 1000 + sp, the cfg's level *
// 1000 + limit, the tag's id), v (the version).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct eng {
  long ip;
#if VERSION >= 2
  long extra;  // v2
#endif
  long sp;
};

struct cfg {
  int level;
#if VERSION >= 2
  int extra;  // v2
  long more;  // v2
#endif
  long limit;
};

struct tag {  // 16 bytes: one in its malloc block (an 8-byte one would count as an array of three)
#if VERSION >= 2
  long seen;  // v2
#endif
  long id;
  long weight;
};

void* keep;
void* spare;
void* raw;
void* logged;
void* backup;    // two more engines a call through a pointer returned: five questions,
void* previous;  // which graft diff names without their details (--questions has them)

__attribute__((noinline)) void* make(long ip) {
  struct eng* e = calloc(1, sizeof *e);
  e->ip = ip;
  e->sp = 2 * ip;
  return e;
}

void* (*volatile maker)(long) = make;

__attribute__((noinline)) long run(const void* engine) {
  const struct eng* e = engine;
  return e->ip * 1000 + e->sp;
}

__attribute__((noinline)) static void configure(int level) {
  void* memory = calloc(1, sizeof(struct cfg));
  raw = memory;
  struct cfg* c = memory;
  c->level = level;
  c->limit = 40;
}

__attribute__((noinline)) static long limits(void) {
  const struct cfg* c = raw;
  return c->level * 1000L + c->limit;
}

// Keeps the first of its variable arguments: what `...` passes is untyped here.
__attribute__((noinline)) static void note(int count, ...) {
  va_list arguments;
  va_start(arguments, count);
  if (count > 0) logged = va_arg(arguments, void*);
  va_end(arguments);
}

__attribute__((noinline)) static void label(long id) {
  struct tag* t = calloc(1, sizeof *t);
  t->id = id;
  note(1, t);
}

__attribute__((noinline)) static long labelled(void) { return ((const struct tag*)logged)->id; }

int main(void) {
  keep = make(7);
  spare = maker(3);
  backup = maker(4);
  previous = maker(5);
  configure(2);
  label(99);
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (line[0] == 'r')
      printf("%ld %ld %ld %ld %ld %ld\n", run(keep), run(spare), limits(), labelled(), run(backup), run(previous));
    else if (line[0] == 'v') printf("%d\n", VERSION);
    else printf("?\n");
    fflush(stdout);
  }
  return 0;
}
