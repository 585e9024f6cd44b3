// Test target: a global struct whose layout the next version changes.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct item {
  int id;
  long expiry;
  int value;
};

struct item current = {1, 10};

int describe(void) { return current.id * 100 + current.value; }

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    printf("%d\n", describe());
    fflush(stdout);
  }
  return 0;
}
