// Test target: a release that changes the initial value of a writable
// global nothing else of the release touches (nginx's `Server: nginx/1.30.1`
// header, a writable array the unchanged code keeps sending). The running
// process keeps its value; graft diff says so. One command per line:
//   h   the header     v   the version
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char server_header[] = "Server: keptinit/2";

__attribute__((noinline)) static int version(void) { return 2; }

int main(void) {
  printf("ready %d\n", getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (line[0] == 'h') printf("%s\n", server_header);
    else printf("%d\n", version());
    fflush(stdout);
  }
  return 0;
}
