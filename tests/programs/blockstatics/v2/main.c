// Test target: note() (statics.c, the same in both versions) has two
// block-scope statics of one name and different types; the versions change
// answer(). "note K" records K and prints what note() returns.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long note(long k);

// Keeps the statics whole in memory (their address escapes).
__attribute__((noinline)) void touch(void* object, size_t size) { __asm__ volatile("" : : "r"(object), "r"(size) : "memory"); }

__attribute__((noinline)) int answer(void) { return 2; }

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "note ", 5) == 0) printf("%ld\n", note(atol(line + 5)));
    else printf("%d\n", answer());
    fflush(stdout);
  }
  return 0;
}
