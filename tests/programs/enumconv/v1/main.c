// Test target (issue 13): code gcc 12 builds with -Wall -Werror (and its own
// -Wlogical-op) where clang 14 warns: an implicit conversion between two
// enumeration types (-Wenum-conversion, on by default in clang, only in
// gcc's -Wextra). Answers each line with the shape of its colour.
#include <stdio.h>
#include <unistd.h>

enum color { RED, GREEN, BLUE };
enum shape { CIRCLE, SQUARE, TRIANGLE };

static enum shape shape_of(enum color c) { return c; }

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    printf("%d\n", (int)shape_of(line[0] == 'g' ? GREEN : RED));
    fflush(stdout);
  }
  return 0;
}
