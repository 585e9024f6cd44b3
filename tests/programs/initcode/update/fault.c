// An initialiser with a bug: it writes through a NULL pointer.
#include <graft/graft.h>
#include <string.h>

GRAFT_INIT(custom_hdrs, char *, value) {
  *value = strdup("leaked");
  char **volatile nowhere = 0;  // the compiler cannot know it is NULL
  *nowhere = *value;
  return 0;
}
