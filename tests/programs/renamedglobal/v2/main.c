// renamedglobal v2: the struct is renamed and its member too; main sets the
// new member at start-up, which the running process will not run again.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct Ms {
  int len;
  int cap;
};

struct Ms tubes;

__attribute__((noinline)) static void serve(void) {
  char line[64];
  printf("ready %d\n", getpid());
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {
    printf("%d\n", tubes.len);
    fflush(stdout);
  }
}

int main(void) {
  tubes.len = 3;
  tubes.cap = 4;
  serve();
  return 0;
}
