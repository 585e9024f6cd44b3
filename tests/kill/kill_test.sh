#!/usr/bin/env bash
# The killed-updater test (issue 14): graft apply and graft revert killed
# with SIGKILL at every named point (GRAFT_TEST_KILL_AT, src/common/kill_point.h),
# on kvstore under redis-benchmark load, for a code patch (v1 -> v2), a data
# patch that transforms every key's entry (v3 -> v4, thousands of writes at
# the commit), update-time code run in a borrowed thread (v6 -> v7) and a
# revert (of v1 -> v2); and on tests/programs/checkpoints, whose four threads
# keep an update (and a revert) waiting on int3s they reach all the time.
# After each kill, once graft's guardian is done:
#   * the server is alive, untraced, no thread stopped, answers every key
#     and list as written, and no request got an error reply;
#   * its code is its binary's but for the entries of the applied patches
#     (no int3 left), and no unrecorded region of graft's is left;
#   * the update is all in or all out: INFO's version agrees with graft status;
#   * it is patchable again: the update that was killed now succeeds.
#
#   tests/kill/kill_test.sh BUILD_DIR [--quick] [KIND...]
#       kinds: code data init revert int3 int3-revert (default: all);
#       --quick: two points per kind (the suite's run, about a minute)
#
# Prints one line per trial and a summary; exit status 1 if any target was harmed.
set -u -o pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [KIND...]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd); shift
quick=0
[ "${1:-}" == --quick ] && { quick=1; shift; }
kinds=("$@"); [ ${#kinds[@]} -gt 0 ] || kinds=(code data init revert int3 int3-revert)
work=$(mktemp -d "${TMPDIR:-/tmp}/graft-kill.XXXXXX")
source "$root/tests/kill/kill_lib.sh"
trap 'load_stop; kv_stop; rm -rf "$work"' EXIT

kill_setup || exit 1
text_check_serve

declare -A phases=(
  [code]="attach syscall:1 syscall-entry:1 syscall-exit:1 syscall-exit:3 mapped:1 planted:1 wait:1 parked:1 commit:1 commit:3 registers committed finish"
  [data]="attach syscall-exit:2 mapped:1 planted:1 wait:1 commit:1 commit:200 commit:1500 registers committed finish"
  [init]="syscall-exit:6 syscall-exit:8 borrowed:1 planted:1 commit:1 committed"
  [revert]="attach commit:1 commit:2 committed reverted syscall-entry:1 syscall-exit:1 unmapped finish"
  [int3]="syscall-exit:6 planted:1 planted:2 wait:1 wait:3 parked:1 parked:2 commit:1 committed"
  [int3-revert]="planted:1 wait:2 parked:1 commit:1 reverted"
)

declare -A quick_phases=(
  [code]="syscall-exit:1 commit:3" [data]="commit:200 committed" [init]="borrowed:1 syscall-exit:6"
  [revert]="commit:1 reverted" [int3]="wait:1 parked:1" [int3-revert]="planted:1 parked:1"
)
for kind in "${kinds[@]}"; do
    list=${phases[$kind]}
    [ $quick == 1 ] && list=${quick_phases[$kind]}
    for phase in $list; do trial "$kind" "$phase"; done
done
echo "kill test: $trials trials, $fired killed at their point, $harmed harmed"
[ $harmed == 0 ]
