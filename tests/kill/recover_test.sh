#!/usr/bin/env bash
# `graft recover PID` with no journal (issue 14): graft AND its guardian
# killed with SIGKILL at a named point (GRAFT_TEST_KILL_AT with
# GRAFT_TEST_KILL_GUARDIAN=1: graft kills its guardian first, so nothing
# undoes the update), then `graft recover`, which knows only what the
# process shows. Points: mapped:1 and commit:3 of kvstore v1 -> v2 under
# redis-benchmark load (a region no record names; at commit:3 the first
# function's entry already redirected into it, and every thread held by
# graft, so the process is stopped), planted:1 of tests/programs/leaver
# (a thread never leaves a changed function: int3s always planted with
# graft's SIGTRAP handler).
# And a revert killed at commit:2 with its guardian (record Reverting, one
# entry put back): recover finishes it. After recover: alive, untraced, no thread stopped, no int3 or region of
# graft's left, the code the binary's, every key as written, none of the
# update, or all of the revert (INFO's version and graft status agree), and
# the update then succeeds. And recover on a process graft never touched changes nothing.
#
#   tests/kill/recover_test.sh BUILD_DIR
set -u -o pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/graft-recover.XXXXXX")
source "$root/tests/kill/kill_lib.sh"
lv_pid=
trap 'load_stop; kv_stop; [ -n "$lv_pid" ] && kill -9 "$lv_pid" 2>/dev/null; rm -rf "$work"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

kv_build v1 v2 || exit 1
p12=$(kv_patch v1 v2) || { echo "graft diff failed"; exit 1; }

# untraced PID: the dead graft's tracing has ended (the kernel lets go of its tracees as it exits).
untraced() {
    for _ in $(seq 500); do
        [ "$(awk '/^TracerPid:/ {print $2}' "/proc/$1/status" 2>/dev/null)" == 0 ] && return 0
        sleep 0.02
    done
    return 1
}

# 1. A process graft never touched: recover says so and changes nothing.
kv_start v1
kv_fill 200
maps_before=$(cat /proc/$kv_pid/maps)
out=$("$graft" recover "$kv_pid" 2>&1) || fail "recover of a clean process failed: $out"
[ "$out" == "process $kv_pid: nothing of graft's to clean up" ] || fail "recover of a clean process said: $out"
[ "$(cat /proc/$kv_pid/maps)" == "$maps_before" ] || fail "recover of a clean process changed its maps"
why=$(healthy "$kv_pid" "${vdir[v1]}/kvstore") || fail "clean process after recover: $why"
kv_verify 200 || fail "clean process: data does not read back"
kv_stop
echo "ok     recover of a clean process: $out"

# both_killed POINT PID BINARY LABEL GRAFT_ARGS...: graft killed at POINT with its guardian, then graft recover.
both_killed() {
    local point=$1 pid=$2 binary=$3 label=$4 why out
    shift 4
    local attempt
    for attempt in 1 2 3 4 5; do
        (GRAFT_TEST_KILL_AT=$point GRAFT_TEST_KILL_GUARDIAN=1 "$graft" "$@" --timeout 3000 >"$work/graft.out" \
             2>"$work/graft.err"; true) 2>/dev/null  # in a subshell: no "Killed" from bash
        grep -q "GRAFT_TEST_KILL_AT: killed at $point (guardian [0-9]*, killed first)" "$work/graft.err" && break
        # Not reached: the update found its safe moment at once (int3s are planted only when it does not).
        [ $1 == apply ] && "$graft" revert "$pid" >/dev/null 2>&1
        [ $attempt == 5 ] && { fail "$label: graft was not killed at $point in 5 runs"; return 1; }
    done
    untraced "$pid" || { fail "$label: still traced after graft died"; return 1; }
    why=$(healthy "$pid" "$binary") && fail "$label: nothing to recover after the kill (the test shows nothing)"
    echo "       $label, before recover: $(echo "$why" | head -3 | tr '\n' ';')"
    out=$("$graft" recover "$pid" 2>&1) || { fail "$label: graft recover failed: $out"; return 1; }
    echo "$out" | sed 's/^/       recover: /'
    why=$(healthy "$pid" "$binary") || fail "$label, after recover: $why"
}

# 2. kvstore v1 -> v2 under load, killed with its guardian at mapped:1 and at commit:3.
for point in mapped:1 commit:3; do
    kv_start v1
    kv_fill 200
    load_start
    both_killed "$point" "$kv_pid" "${vdir[v1]}/kvstore" "kvstore $point" apply "$kv_pid" "$p12"
    load_stop
    "$graft" status "$kv_pid" | grep -q 'no graft patches applied' || fail "kvstore $point: a patch is applied after recover"
    kv_verify 200 || fail "kvstore $point: data does not read back after recover"
    version=$(kv INFO | tr -d '\r' | sed -n 's/^kvstore_version://p')
    [ "$version" == v1 ] || fail "kvstore $point: version $version after recover, not v1"
    [ -s "$work/load.err" ] && fail "kvstore $point: load: $(head -1 "$work/load.err")"
    "$graft" apply "$kv_pid" "$p12" >/dev/null 2>"$work/again.err" ||
        fail "kvstore $point: apply after recover failed: $(head -1 "$work/again.err")"
    version=$(kv INFO | tr -d '\r' | sed -n 's/^kvstore_version://p')
    [ "$version" == v2 ] || fail "kvstore $point: version $version after the apply, not v2"
    kv_stop
    echo "ok     kvstore killed with its guardian at $point, recovered"
done

# 3. The revert of kvstore v1 -> v2 under load, killed with its guardian at commit:2 (its record
# already says Reverting, one entry put back, the others still redirected into the region).
kv_start v1
kv_fill 200
"$graft" apply "$kv_pid" "$p12" >/dev/null 2>"$work/pre.err" || fail "apply before the revert: $(head -1 "$work/pre.err")"
load_start
both_killed commit:2 "$kv_pid" "${vdir[v1]}/kvstore" "kvstore revert commit:2" revert "$kv_pid"
load_stop
"$graft" status "$kv_pid" | grep -q 'no graft patches applied' || fail "revert commit:2: still applied after recover"
kv_verify 200 || fail "revert commit:2: data does not read back after recover"
version=$(kv INFO | tr -d '\r' | sed -n 's/^kvstore_version://p')
[ "$version" == v1 ] || fail "revert commit:2: version $version after recover, not v1"
"$graft" apply "$kv_pid" "$p12" >/dev/null 2>"$work/again.err" ||
    fail "revert commit:2: apply after recover failed: $(head -1 "$work/again.err")"
kv_stop
echo "ok     the revert killed with its guardian at commit:2, recovered"

# 4. tests/programs/leaver with a thread that never leaves a changed function: the update
# always waits, so its int3s and SIGTRAP handler are always planted; killed with its guardian at planted:1.
lv_v1=$(prog_build leaver v1) && lv_v2=$(prog_build leaver v2) || { echo "graft-cc failed"; exit 1; }
plv=$work/leaver.graft
"$graft" diff "$lv_v1" "$lv_v2" -o "$plv" --allow-stuck-threads stuck >/dev/null 2>&1 || { echo "graft diff failed"; exit 1; }
rm -f "$work/lv.in" "$work/lv.out"; mkfifo "$work/lv.in"
"$lv_v1" "$work/never" exit stuck <"$work/lv.in" >"$work/lv.out" 2>&1 &
lv_pid=$!
exec {lv_in}>"$work/lv.in"
for _ in $(seq 1500); do grep -q '^ready' "$work/lv.out" 2>/dev/null && break; sleep 0.02; done
both_killed planted:1 "$lv_pid" "$lv_v1" "leaver planted:1" apply "$lv_pid" "$plv"
"$graft" status "$lv_pid" | grep -q 'no graft patches applied' || fail "leaver planted:1: applied after recover"
[ "$(ls /proc/$lv_pid/task | wc -l)" == 3 ] || fail "leaver: $(ls /proc/$lv_pid/task | wc -l) threads, not 3"
kill -9 "$lv_pid"; exec {lv_in}>&-; wait "$lv_pid" 2>/dev/null
echo "ok     leaver killed with its guardian at planted:1, recovered"

[ $failed == 0 ] && echo "recover test: passed"
[ $failed == 0 ]
