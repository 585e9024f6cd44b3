// Test target (the next release): the global char array made shorter.
// (haproxy 3.4's version strings shrank from 20 to 16 bytes). Its running
// value is kept when it fits the new size; when it does not, the update
// must be refused: a string cut without its terminating zero would be read
// past its end.
//
// One command per line on stdin: "b" -> the banner, "set TEXT" -> "ok".
#include <stdio.h>
#include <string.h>
#include <unistd.h>

char banner[12] = "server 1.1";

// Not inlined into the loop (gcc would, under graft-gcc's balanced policy):
// only handle() uses the banner, so only handle() changes.
__attribute__((noinline)) static void handle(const char* line) {
  if (strcmp(line, "b") == 0) {
    printf("%s\n", banner);
  } else if (strncmp(line, "set ", 4) == 0) {
    memset(banner, 0, sizeof banner);
    strncpy(banner, line + 4, sizeof banner - 1);
    printf("ok\n");
  } else {
    printf("?\n");
  }
  fflush(stdout);
}

__attribute__((noinline)) static int serve(void) {
  char line[256];
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    handle(line);
  }
  return 0;
}

int main(void) { return serve(); }
