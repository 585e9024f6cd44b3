// libtally.a: what its members offer the program.
#pragma once

void tally_init(void);
long score(long n);
long tally_calls(void);
long tally_largest(void);
const char* tally_name(void);
