// Test target: tables that grow in the next version. `names` is an array of
// pointers to constant strings (writable itself: the patch gives it new
// storage, filled from the old value at commit); `sizes` is truly constant
// (the patch carries a new copy). One command per line on stdin:
//   N         prints sizes[N] and names[N] ("-1 ?" past the end)
//   alias N   points names[N] at names[0]'s string (the program changes the table)
//   v         prints the version
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const int sizes[] = {10, 20};
static const char* names[] = {"ten", "twenty"};

#define COUNT(a) (int)(sizeof a / sizeof a[0])

int size_of(int i) { return i >= 0 && i < COUNT(sizes) ? sizes[i] : -1; }
const char* name_of(int i) { return i >= 0 && i < COUNT(names) ? names[i] : "?"; }
void alias_entry(int i) {
  if (i >= 0 && i < COUNT(names)) names[i] = names[0];
}
int version(void) { return 1; }

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "alias ", 6) == 0) {
      alias_entry(atoi(line + 6));
      printf("aliased\n");
    } else if (line[0] == 'v') {
      printf("%d\n", version());
    } else {
      const int i = atoi(line);
      printf("%d %s\n", size_of(i), name_of(i));
    }
    fflush(stdout);
  }
  return 0;
}
