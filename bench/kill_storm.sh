#!/usr/bin/env bash
# The killed-updater storm (issue 14; docs/RELIABILITY.md "Killed updater"):
# graft apply / revert on kvstore under redis-benchmark load, killed with
# SIGKILL over and over, each time at a random point: half the trials at a
# named point with a random count (GRAFT_TEST_KILL_AT), half from outside
# after a random delay. After each, the checks of tests/kill/kill_test.sh
# (alive, untraced, nothing stopped, no int3 left, data as written, all or
# none of the update, patchable again).
#
#   bench/kill_storm.sh BUILD_DIR SECONDS [SEED]
#
# Prints every harmed trial, then a table of trials by kind and outcome and
# one last line: "kill storm: N trials, K killed, H harmed".
set -u -o pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUILD_DIR SECONDS [SEED]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
seconds=$2
RANDOM=${3:-$$}
work=$(mktemp -d "${TMPDIR:-/tmp}/graft-kill-storm.XXXXXX")
source "$root/tests/kill/kill_lib.sh"
trap 'load_stop; kv_stop; rm -rf "$work"' EXIT

kill_setup || exit 1

kinds=(code data init revert int3 int3-revert)
points=(attach syscall syscall-entry syscall-exit mapped borrowed planted wait parked commit registers committed
        reverted unmapped finish)
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
    kind=${kinds[RANDOM % ${#kinds[@]}]}
    if [ $((RANDOM % 2)) == 0 ]; then
        point=${points[RANDOM % ${#points[@]}]}
        case $point in
            commit) point=commit:$((1 + RANDOM % 2000)) ;;
            syscall*|mapped|wait|parked|borrowed) point=$point:$((1 + RANDOM % 6)) ;;
        esac
    else
        point=after:$((RANDOM * 10 % 200000))
    fi
    trial "$kind" "$point" >"$work/trial.log"
    grep -v '^ok ' "$work/trial.log"
done
for key in "${!outcomes[@]}"; do echo "  ${outcomes[$key]}  $key"; done | sort -k2
echo "kill storm: $trials trials, $fired killed, $harmed harmed"
