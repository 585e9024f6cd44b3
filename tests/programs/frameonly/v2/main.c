// Test target: a struct that changes (struct engine) and lives only in
// the frames of run_script, as nginx's script engine lives in a request
// handler's: one on the stack, one from malloc, each held in locals and
// never stored in memory. main holds a struct session in registers (DWARF
// gives it in pieces, so graft cannot read its pointer), and struct state
// leads to struct engine through a member nothing ever sets. graft waited
// for main's frame, which never returns ("its frame may point to changed
// data"); graft-cc's records say no pointer to an engine is kept in memory,
// so main's frame cannot reach one. One command per line:
//   r TEXT   runs the script over TEXT      c   scripts run so far      v   the version
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define VERSION 2

struct engine {
  long acc;
  int steps;
  long limit;  // v2
};

struct state {
  int count;
  struct engine *last;  // declared, never set
};

struct session {
  struct state *state;
  long since;
};

__attribute__((noinline)) static void step(struct engine *e, char c) {
  e->acc = e->acc * 3 + c;
  e->steps++;
}

__attribute__((noinline)) static long run_script(const char *text) {
  struct engine on_stack = {0, 0};
  struct engine *from_heap = malloc(sizeof *from_heap);
  from_heap->acc = 1;
  from_heap->steps = 0;
  for (const char *p = text; *p && *p != '\n'; ++p) {
    step(&on_stack, *p);
    step(from_heap, *p);
  }
  const long result = on_stack.acc + from_heap->acc + VERSION * 1000000;
  free(from_heap);
  return result;
}

__attribute__((noinline)) static int version(void) { return VERSION; }

__attribute__((noinline)) static struct state *make_state(void) { return calloc(1, sizeof(struct state)); }

#ifdef MODES
// Built with -DMODES: main chooses how it serves (redis-server runs as
// redis-check-aof when so named): serve, or count, each never returning.
// A process runs one of them, so no thread need have serve's frame.
__attribute__((noinline, noreturn)) static void count(void) {
  long n = 0;
  char line[128];
  while (fgets(line, sizeof line, stdin)) printf("%ld\n", ++n), fflush(stdout);
  exit(0);
}

__attribute__((noinline, noreturn)) static void serve(void) {
#else
int main(void) {
#endif
  struct session s = {make_state(), (long)getpid()};
  printf("ready %ld\n", s.since);
  fflush(stdout);
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    if (line[0] == 'r') {
      printf("%ld\n", run_script(line + 2));
      s.state->count++;
    } else if (line[0] == 'c') {
      printf("%d\n", s.state->count);
    } else {
      printf("%d\n", version());
    }
    fflush(stdout);
  }
#ifdef MODES
  exit(0);
}

int main(int argc, char** argv) {
  (void)argv;
  if (argc > 1) count();
  serve();
#else
  return 0;
#endif
}
