#include "prog.h"

__attribute__((noinline)) static int opaque(int x) { __asm__ volatile("" : "+r"(x)); return x; }

static int helper(int x) { return x + 1; }  // a second static `helper` lives in other.c

// Small enough that clang inlines it into scaled() under the fast policy.
static inline int scale(int x) { return x * 20; }

int compute(int x) { return helper(x) * 3; }
int scaled(int x) { return scale(x) + 1; }

int tick(void) {
  static int count;  // a function-local static: its value must be kept
  return ++count + 1000;
}

const char* greeting(void) { return "hello from v2"; }

// A dense switch: a jump table in its own read-only section, whose entries
// point into the middle of this function (opaque() keeps it a real table).
int dispatch(int op, int x) {
  int r;
  switch (op) {
    case 0: r = x + 100; break;
    case 1: r = x * 30; break;
    case 2: r = x - 700; break;
    case 3: r = x << 4; break;
    case 4: r = x / 30; break;
    case 5: r = x % 50; break;
    case 6: r = -x * 2; break;
    default: return -1;
  }
  return opaque(r);
}
