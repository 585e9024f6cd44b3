// Code not built with graft-cc (the test compiles it with plain clang and
// links it in): it may hand list_add anything, and no record says what.
#include "list.h"

void stray_add(struct list* l, void* value) { list_add(l, value); }
