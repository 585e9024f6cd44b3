#include "prog.h"

static int helper(int x) { return x + 1; }  // a second static `helper` lives in other.c

// Small enough that clang inlines it into scaled() under the fast policy.
static inline int scale(int x) { return x * 20; }

int compute(int x) { return helper(x) * 4; }
int scaled(int x) { return scale(x) + 1; }

int tick(void) {
  static int count;  // a function-local static: its value must be kept
  return ++count + 1000;
}

const char* greeting(void) { return "hello from v2"; }
