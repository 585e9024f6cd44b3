// The same in both versions: the service loop main calls, and its logging.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void log_line(const char* format, const char* arg) {
  fprintf(stderr, format, arg);
  fputc('\n', stderr);
}

int serve(int fd) {
  char line[256];
  size_t used = 0;
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  for (;;) {
    const ssize_t n = read(fd, line + used, 1);
    if (n != 1) return 1;
    if (line[used] != '\n') {
      if (used + 1 < sizeof line) ++used;
      continue;
    }
    line[used] = 0;
    used = 0;
    if (strcmp(line, "quit") == 0) return 0;
    printf("%s\n", strcmp(line, "ping") == 0 ? "pong" : "?");
    fflush(stdout);
  }
}
