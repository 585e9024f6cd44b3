// Test target: a constant command table (with pointers: .data.rel.ro) grows
// in the next version, and a local variable changes type: neither is state.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int twice(int x) { return 2 * x; }
static int thrice(int x) { return 3 * x; }

struct command {
  const char* name;
  int (*run)(int);
};

const struct command commands[] = {  // global: keeps its name
    {"double", twice},
    {"triple", thrice},
};

void dispatch(const char* line) {
  long long argument = atoll(strchr(line, ' ') ? strchr(line, ' ') + 1 : "0");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strncmp(line, commands[i].name, strlen(commands[i].name)) == 0) {
      printf("%d\n", commands[i].run((int)argument));
      return;
    }
  printf("unknown command\n");
}

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    dispatch(line);
    fflush(stdout);
  }
  return 0;
}
