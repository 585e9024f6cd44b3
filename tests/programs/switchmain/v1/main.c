// Test target: main decides a limit with a switch before its service call,
// which clang compiles to a jump table (an indirect jump). graft reads the
// table's entries from its relocations, so the jump goes only where the
// table says; followed anywhere, every value main computed would reach
// every place, and main would have no transfer point. The release changes
// only VERSION, which main uses before and after serve().
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSION "1.0"

int serve(int fd);

int main(int argc, char** argv) {
  setvbuf(stderr, NULL, _IOLBF, 0);
  long limit = 0;
  switch (argc) {
    case 1: limit = 10; fputs("no arguments\n", stderr); break;
    case 2: limit = atol(argv[1]); break;
    case 3: limit = atol(argv[2]) * 2; fputs("two arguments\n", stderr); break;
    case 4: limit = (long)strlen(argv[3]); break;
    case 5: limit = atol(argv[4]) + 7; fputs("four arguments\n", stderr); break;
    case 6: limit = -1; fputs("five arguments\n", stderr); break;
    default: limit = 99;
  }
  fprintf(stderr, "server %s starting, limit %ld\n", VERSION, limit);
  const int rc = serve(0);
  printf("bye %s %ld\n", VERSION, limit);
  fflush(stdout);
  return rc;
}
