// good.c's update-time code, and commit-time code: with every thread stopped,
// once the commit's writes are in, it marks the event the update logged.
// (graft diff reads GRAFT_INIT and GRAFT_RERUN from this file itself: no #include of good.c.)
#include <fcntl.h>
#include <graft/graft.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int log_event(const char *what);

// As v2's start-up does: the first line of the file argv[1] names (argv
// read back from /proc/self/cmdline).
GRAFT_INIT(custom_hdrs, char *, value) {
  char args[512] = {0}, text[128] = {0};
  int fd = open("/proc/self/cmdline", O_RDONLY);
  if (fd < 0) return 1;
  ssize_t n = read(fd, args, sizeof args - 1);
  close(fd);
  if (n <= 0) return 2;
  const char *path = args + strlen(args) + 1;  // argv[1]
  if (path >= args + n) return 3;
  fd = open(path, O_RDONLY);
  if (fd < 0) return 4;
  n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 5;
  text[strcspn(text, "\n")] = 0;
  *value = strdup(text);
  return *value ? 0 : 6;
}

GRAFT_RERUN(setup_table);

GRAFT_ON_UPDATE() { return log_event("live-updated"); }

extern char last_event[64];

GRAFT_AT_COMMIT() {
  const size_t n = strlen(last_event);
  if (n + 3 > sizeof last_event) return 1;
  memcpy(last_event + n, "+c", 3);
  return 0;
}
