// renamedglobal v1: a global whose struct the next release renames by value
// (beanstalkd 1.12's tubes: struct ms -> struct Ms, `used` renamed `len`).
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct ms {
  int used;
};

struct ms tubes;

__attribute__((noinline)) static void serve(void) {
  char line[64];
  printf("ready %d\n", getpid());
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {
    printf("%d\n", tubes.used);
    fflush(stdout);
  }
}

int main(void) {
  tubes.used = 3;
  serve();
  return 0;
}
