// good.c's update-time code, and commit-time code that finds something wrong:
// the commit is rolled back, the update-time code's work before it notwithstanding.
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

GRAFT_AT_COMMIT() { return 7; }
