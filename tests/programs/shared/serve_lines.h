// The command loop of a test program: "ready PID", then one command per line
// on stdin, each answered by `handle` (which prints one line and flushes).
// Not inlined: the loop is the frame a thread waits in while graft applies.
#ifndef GRAFT_TEST_SERVE_LINES_H
#define GRAFT_TEST_SERVE_LINES_H
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) static int serve_lines(void (*handle)(const char* line)) {
  char line[256];
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    handle(line);
  }
  return 0;
}

// The answer to a line no other command took: the version for "v" (the
// program's VERSION), else "?"; flushed, as every answer.
#define ANSWER_VERSION_OR_UNKNOWN(line)                        \
  do {                                                         \
    if (strcmp((line), "v") == 0) printf("%d\n", VERSION);     \
    else printf("?\n");                                        \
    fflush(stdout);                                            \
  } while (0)
#endif
