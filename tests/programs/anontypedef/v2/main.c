// Test target: a global array of an anonymous typedef'd struct (THREAD) whose
// layout v2 changes. Each line is served by the next THREAD; the reply is
// its id and how many lines it served (v2 counts).
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "thread.h"

THREAD threads[4];
int next_thread;

__attribute__((noinline)) void serve(THREAD* t) {
  printf("%d %ld\n", t->id, ++t->served);
  fflush(stdout);
}

int main(void) {
  for (int i = 0; i < 4; i++) {
    threads[i].id = i + 1;
    threads[i].ctx = malloc(7);
  }
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) serve(&threads[next_thread++ % 4]);
  return 0;
}
