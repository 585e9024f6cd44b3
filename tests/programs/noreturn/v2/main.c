// Test target: main calls die() on bad arguments before its service call.
// die() ends in exit() without being declared noreturn, so clang puts the
// next block right after each call, with die()'s stack arguments still
// pushed: a path through the call into that block does not exist, and
// graft's frame analysis must not follow one (it would find two stack
// depths at one place and no transfer point; OpenSSH's sshd, whose usage()
// and fatal() are such calls, was refused so). The release changes only
// VERSION, which main uses before and after serve().
#include <stdio.h>
#include <stdlib.h>

#define VERSION "1.1"

void log_line(const char* format, const char* arg);
int serve(int fd);

static void die(const char* what, long a, long b, long c, long d, long e, long f, long g) {
  fprintf(stderr, "%s %ld %ld %ld %ld %ld %ld %ld\n", what, a, b, c, d, e, f, g);
  exit(2);
}

int main(int argc, char** argv) {
  setvbuf(stderr, NULL, _IOLBF, 0);
  if (argc > 3) die("too many arguments", argc, 1, 2, 3, 4, 5, 6);
  if (argc > 2) die(argv[2], argc, 6, 5, 4, 3, 2, 1);
  log_line("server version %s starting", VERSION);
  const int rc = serve(0);
  log_line("server version %s terminating", VERSION);
  printf("bye %s\n", VERSION);
  fflush(stdout);
  return rc;
}
