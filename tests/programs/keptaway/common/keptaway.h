// Test target: a struct whose only lasting pointer is in memory graft cannot
// type (an array of void * slots, as Lua's registry keeps redis's loadCtx
// and its userdata keep cjson's config). No global reaches it through typed
// pointers, and graft-cc's records show its address goes into an untyped
// argument: the frames do not account for it, so graft diff must refuse
// rather than leave it in the old layout under the new code. The context
// grows in v2 (vN/main.c defines VERSION), a member inserted before `n`.
// One command per line on stdin:
//   keep N   a context with id N (and n = 10 N), kept in slot 0
//   r        the kept context: "ID N"
//   v        the version
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_lines.h"

struct ctx {
  int id;
#if VERSION >= 2
  long flags;  // v2
#endif
  long n;
};

static void* slots[4];  // what the "library" keeps: untyped

__attribute__((noinline)) void slot_put(int k, void* p) { slots[k] = p; }
__attribute__((noinline)) void* slot_get(int k) { return slots[k]; }

static void handle(const char* line) {
  int id = 0;
  if (sscanf(line, "keep %d", &id) == 1) {
    struct ctx* c = calloc(1, sizeof *c);
    c->id = id;
    c->n = 10L * id;
    slot_put(0, c);
    printf("kept\n");
  } else if (strcmp(line, "r") == 0) {
    struct ctx* c = slot_get(0);
    printf("%d %ld\n", c ? c->id : -1, c ? c->n : -1);
  } else if (strcmp(line, "v") == 0) {
    printf("%d\n", VERSION);
  } else {
    printf("?\n");
  }
  fflush(stdout);
}

int main(void) { return serve_lines(handle); }
