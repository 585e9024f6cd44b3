// The unit linked first: it only declares struct entry (common/table.h).
// One command per line on stdin: "init" -> an entry (1, 10), "r" -> the first entry's value, "v" -> the version.
#include <stdio.h>
#include <string.h>

#include "serve_lines.h"
#include "table.h"

struct table tab;

static void handle(const char* line) {
  if (strcmp(line, "init") == 0) {
    // Made under the command loop's frame, which a return address left above
    // it (from main, before the loop) would look like a frame in table.c.
    tab.first = make_entry(1, 10);
    printf("made\n");
  } else if (strcmp(line, "r") == 0) {
    printf("%ld\n", value_of(tab.first));
  } else if (strcmp(line, "v") == 0) {
    printf("%d\n", VERSION);
  } else {
    printf("?\n");
  }
  fflush(stdout);
}

int main(void) { return serve_lines(handle); }
