#include "ev.h"

#include <stdlib.h>

void ev_init(struct loop* l) {
  struct poll_state* state = calloc(1, sizeof *state);
  l->private_state = state;
}

int ev_add(struct loop* l, int fd, ev_proc* proc, void* client_data) {
  if (fd < 0 || fd >= 16) return -1;
  l->events[fd].mask = 1;
  l->events[fd].proc = proc;
  l->events[fd].client_data = client_data;
  if (fd >= l->count) l->count = fd + 1;
  return 0;
}

void ev_fire(struct loop* l) {
  ((struct poll_state*)l->private_state)->polls++;
  for (int fd = 0; fd < l->count; fd++)
    if (l->events[fd].mask) l->events[fd].proc(l, fd, l->events[fd].client_data);
}
