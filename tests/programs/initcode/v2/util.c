// New in v2: an event log the program's start-up writes to.
#include <stdio.h>

char last_event[64] = "none";
static int ticks;  // main.c has a static of that name too

int log_event(const char* what) {
  ticks++;
  snprintf(last_event, sizeof last_event, "%s#%d", what, ticks);
  return 0;
}
