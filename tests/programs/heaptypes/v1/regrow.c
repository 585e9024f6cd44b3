// heaptypes' allocator, in a file of its own (see heaptypes.h).
#include <stdlib.h>

void* regrow(void* block, size_t size) {
  block = realloc(block, size);
  if (!block) abort();
  return block;
}
