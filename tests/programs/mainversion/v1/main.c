// Test target: a release that changes only its version string, which main
// uses before and after its service call (as mosquitto logs "version %s
// starting" and "terminating"). main continues at its start-up calls, but
// not at the call it serves in: the string's address is kept in a register
// across it. Its thread moves into the new main when serve() returns.
//
// One command per line on stdin (serve.c): "ping" -> "pong", "quit": serve()
// returns, and main prints "bye VERSION" with the version of the main that
// runs then.
#include <stdio.h>

#define VERSION "1.0"

void log_line(const char* format, const char* arg);
int serve(int fd);

int main(void) {
  setvbuf(stderr, NULL, _IOLBF, 0);
  log_line("server version %s starting", VERSION);
  const int rc = serve(0);
  log_line("server version %s terminating", VERSION);
  printf("bye %s\n", VERSION);
  fflush(stdout);
  return rc;
}
