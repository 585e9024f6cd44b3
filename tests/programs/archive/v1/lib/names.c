// libtally.a(names.o): a member the program links and no version changes.
#include "tally.h"

const char* tally_name(void) { return "tally"; }
