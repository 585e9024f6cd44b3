// An event loop with void * client data (as redis's ae): a file event's
// procedure gets back the pointer it was registered with.
#ifndef FACTS_EV_H
#define FACTS_EV_H

struct loop;
typedef void ev_proc(struct loop* l, int fd, void* client_data);

struct fevent {
  int mask;
  ev_proc* proc;
  void* client_data;
};

struct loop {
  struct fevent events[16];
  int count;
  void* private_state;  // the poller's own state
};

struct poll_state {
  int polls;
};

void ev_init(struct loop* l);
int ev_add(struct loop* l, int fd, ev_proc* proc, void* client_data);
void ev_fire(struct loop* l);

#endif
