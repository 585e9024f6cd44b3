// Test target: pick()'s two branches end in one shared call, which clang
// merges into instructions the line table gives line 0.
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) int pick(int a, int b) {
  int r;
  if (a > b) {
    r = a * 3;
    printf("a %d\n", r);
  } else {
    r = b * 5;
    printf("b %d\n", r);
  }
  return r;
}

int main(int argc, char** argv) {
  (void)argv;
  printf("ready %d\n", getpid());
  fflush(stdout);
  return pick(argc, 2) > 0 ? 0 : 1;
}
