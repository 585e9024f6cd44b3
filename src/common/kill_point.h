// Test hooks for the killed-updater tests (tests/kill/kill_test.sh,
// bench/kill_storm.sh, tests/kill/recover_test.sh, hostile_test): with
// GRAFT_TEST_KILL_AT=<phase>[:<n>] in its environment, graft kills itself
// with SIGKILL the n-th time (1 if not given) it passes the named point, as
// `kill -9` from outside would, after one line on stderr naming the point and
// its guardian. With GRAFT_TEST_KILL_GUARDIAN=1 too, it kills its guardian
// first (nothing is left to undo the update: what `graft recover` is for).
// GRAFT_TEST_TRIGGER_AT=<phase>[:<n>] instead creates the file
// GRAFT_TEST_TRIGGER there and waits (up to 5 s) until a thread of the
// target is exiting: a target that watches for the file (tests/programs/
// leaver) exits or execs from another thread at that instant. Without the
// variables a point costs one branch.
// The points and their names are listed in docs/RELIABILITY.md ("Killed
// updater").
#pragma once
#include <sys/types.h>

namespace graft {

void kill_point(const char* phase);
// The guardian of the current session (0: none), named in the hook's line so
// that a test can wait for it to finish.
void set_kill_point_guardian(pid_t guardian);
// The process being updated, for GRAFT_TEST_TRIGGER_AT.
void set_kill_point_target(pid_t target);
// No point kills from now on: for the guardian, a fork of graft that must
// survive the point that killed graft.
void disable_kill_points();

}  // namespace graft
