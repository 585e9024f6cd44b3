// Test target, next release: a new counter comes first in the section and
// the two old ones swap places; the answers name the version.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define COUNTER __attribute__((section("counters"), used))

static unsigned long hits_z COUNTER = 7;
static unsigned long hits_b COUNTER = 200;
static unsigned long hits_a COUNTER = 100;

__attribute__((noinline)) static void handle(const char* line) {
  if (strcmp(line, "a") == 0) ++hits_a;
  else if (strcmp(line, "b") == 0) ++hits_b;
  else if (strcmp(line, "z") == 0) ++hits_z;
  else if (strcmp(line, "c") != 0) {
    printf("?\n");
    fflush(stdout);
    return;
  }
  printf("v2 a=%lu b=%lu z=%lu\n", hits_a, hits_b, hits_z);
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
