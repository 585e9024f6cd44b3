// Test target: statics that share one section (haproxy's BUG_ON counters,
// __attribute__((section("dbg_cnt")))). The assembler names each by its
// offset in the section, and the next release places them in another order:
// the new code must reach each counter as itself, never as an offset from
// another whose place differs in the running binary.
//
// One command per line on stdin: "a" or "b" counts a hit and answers the
// counts; "c" answers them without counting.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define COUNTER __attribute__((section("counters"), used))

static unsigned long hits_a COUNTER = 100;
static unsigned long hits_b COUNTER = 200;

__attribute__((noinline)) static void handle(const char* line) {
  if (strcmp(line, "a") == 0) ++hits_a;
  else if (strcmp(line, "b") == 0) ++hits_b;
  else if (strcmp(line, "c") != 0) {
    printf("?\n");
    fflush(stdout);
    return;
  }
  printf("a=%lu b=%lu\n", hits_a, hits_b);
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
