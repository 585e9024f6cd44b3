// The library calls a thread may wait in for a long time: what makes a loop
// a service loop for the optimisation policy (src/plugin), and the calls
// where a thread of a changed loop may move into its new body
// (src/diff/transfer.cpp). Header-only, no dependencies (the plugin includes it).
#pragma once
#include <string_view>

namespace graft {

inline constexpr const char* kBlockingCalls[] = {
    "epoll_wait", "epoll_pwait", "poll", "ppoll", "select", "pselect", "accept", "accept4", "read", "recv",
    "recvfrom", "recvmsg", "fgets", "getline", "getchar", "fread", "pthread_cond_wait", "pthread_cond_timedwait",
    "pthread_join", "sem_wait", "nanosleep", "usleep", "sleep", "pause", "sigwait", "sigwaitinfo",
    "sigtimedwait", "msgrcv", "wait", "waitpid", "io_getevents", "futex"};

// Where a thread at an update point (graft.h's graft_update_point()) waits
// while an update is pending: a place where threads move, like a waiting call.
inline constexpr const char* kUpdatePointCall = "graft_update_point_reached";
// Where GRAFT_UPDATE_POINT("name") records its name (graft.h): not loaded.
inline constexpr const char* kUpdatePointSection = ".graft.update_points";

inline bool is_blocking_call(std::string_view callee) {
  for (const char* name : kBlockingCalls)
    if (callee == name) return true;
  return false;
}

}  // namespace graft
