#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prog.h"

int added_counter = 41;  // a new global with its initial value

static int added(int x) { return x * 2; }  // a new function

void handle(const char* command) {
  if (strncmp(command, "compute ", 8) == 0) printf("%d\n", compute(atoi(command + 8)));
  else if (strncmp(command, "scaled ", 7) == 0) printf("%d\n", scaled(atoi(command + 7)));
  else if (strncmp(command, "other ", 6) == 0) printf("%d\n", other(atoi(command + 6)));
  else if (strncmp(command, "dispatch ", 9) == 0) {
    int op = 0, x = 0;
    sscanf(command + 9, "%d %d", &op, &x);
    printf("%d\n", dispatch(op, x));
  } else if (strcmp(command, "greet") == 0) printf("%s\n", greeting());
  else if (strcmp(command, "tick") == 0) printf("%d\n", tick());
  else if (strcmp(command, "calls") == 0) printf("%ld\n", (long)atomic_load(&total_calls));
  else if (strcmp(command, "added") == 0) printf("%d\n", added(++added_counter));
  else printf("unknown command\n");
}
