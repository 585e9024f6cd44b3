// A test hook for the killed-updater tests (tests/integration/kill_test.sh,
// bench/kill_storm.sh): with GRAFT_TEST_KILL_AT=<phase>[:<n>] in its
// environment, graft kills itself with SIGKILL the n-th time (1 if not
// given) it passes the named point, as `kill -9` from outside would, after
// one line on stderr naming the point and its guardian. Without the
// variable a point costs one branch. The points and their names are listed
// in docs/RELIABILITY.md ("Killed updater").
#pragma once
#include <sys/types.h>

namespace graft {

void kill_point(const char* phase);
// The guardian of the current session (0: none), named in the hook's line so
// that a test can wait for it to finish.
void set_kill_point_guardian(pid_t guardian);
// No point kills from now on: for the guardian, a fork of graft that must
// survive the point that killed graft.
void disable_kill_points();

}  // namespace graft
