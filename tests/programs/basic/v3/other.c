#include "prog.h"

static int helper(int x) { return x - 2; }

int other(int x) { return helper(x) * 100; }
