// What the epoll test programs share: a write to each of their eventfds.
#ifndef GRAFT_TEST_EVENTFDS_H
#define GRAFT_TEST_EVENTFDS_H
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static void ping_eventfds(const int* fds, int count) {
  for (int i = 0; i < count; ++i) {
    uint64_t one = 1;
    if (write(fds[i], &one, sizeof one) != sizeof one) abort();
  }
}
#endif
