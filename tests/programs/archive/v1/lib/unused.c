// libtally.a(unused.o): a member nothing refers to, so the linker leaves it
// out (and graft-cc does not record it).
long tally_unused(long n) { return n + 1; }
