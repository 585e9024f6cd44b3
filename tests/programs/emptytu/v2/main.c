// Test target: one of its translation units (win32.c) compiles to nothing
// here, so it has no DWARF unit; the versions change answer().
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) int answer(void) { return 2; }

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    printf("%d\n", answer());
    fflush(stdout);
  }
  return 0;
}
