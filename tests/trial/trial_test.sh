#!/usr/bin/env bash
# scripts/trial.sh on a real server under wrk: examples/httpd v1 -> v2 built
# by the trial with graft-cc, applied and reverted under load, one row whose
# every column says so. Then bad input (one line, exit 2), and a trial
# interrupted (SIGINT to its process group, as ^C does) in the middle of its
# load: every process it started is gone.
# Usage: trial_test.sh BUILD_DIR
set -u -o pipefail
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
trial=$root/scripts/trial.sh
fail() { echo "trial_test: FAIL: $*" >&2; exit 1; }
for tool in wrk curl make setsid; do command -v $tool >/dev/null || fail "$tool not found (scripts/deps.sh installs it)"; done

work=$(mktemp -d "${TMPDIR:-/tmp}/graft-trial-test.XXXXXX") || fail "mktemp"
trial_pid= passed=
cleanup() {
    [ -z "$trial_pid" ] || kill -KILL -- "-$trial_pid" 2>/dev/null
    # What a failed trial left running, by the PIDs it recorded (each leads its own group);
    # after a pass they are known to be gone, and their PIDs may be someone else's by now.
    [ -z "$passed" ] && [ -f "$work/run/pids" ] && while read -r _ pid; do kill -KILL -- "-$pid" "$pid" 2>/dev/null; done <"$work/run/pids"
    rm -rf "$work"
}
trap cleanup EXIT
for v in v1 v2; do
    mkdir -p "$work/$v" && cp "$root/examples/httpd/$v/Makefile" "$root/examples/httpd/$v"/*.[ch] "$work/$v/" || fail "copy $v"
done

args=(--graft "$build" --old "$work/v1" --new "$work/v2" --build 'make -s' --binary httpd
      --run '{bin} --root {dir}/www --port {port} --threads 4'
      --ready 'curl -sf http://127.0.0.1:$PORT/index.html -o /dev/null'
      --serving 'curl -sf http://127.0.0.1:$PORT/index.html -o /dev/null'
      --check-old 'curl -sf -D - http://127.0.0.1:$PORT/index.html -o /dev/null | grep -q "^Server: graft-httpd/v1"'
      --check-new 'curl -sf -D - http://127.0.0.1:$PORT/index.html -o /dev/null | grep -q "^Server: graft-httpd/v2"')

# --- a whole trial ---------------------------------------------------------
# The load lasts long enough for an apply slowed by a busy machine (the
# suite building its programs beside it took the apply past a 6 s load).
timeout 240 "$trial" "${args[@]}" --name 'httpd v1 -> v2' --work "$work/run" \
    --load 'wrk -t2 -c8 -d12s http://127.0.0.1:$PORT/index.html' >"$work/out" 2>"$work/err"
rc=$?
cat "$work/out"
[ $rc -eq 0 ] || fail "trial.sh exited with $rc: $(cat "$work/out" "$work/err")"
row=$(grep '^| httpd v1 -> v2 |' "$work/out") || fail "no row for the pair"
IFS='|' read -r _ name built patch pause failed revert _ <<<"$row"
[[ $built == " ok ("* ]] || fail "build column: $built"
[[ $patch =~ ^\ [1-9][0-9]*\ replaced ]] || fail "patch column: $patch"
[[ $pause =~ ^\ [0-9]+\ us ]] || fail "apply pause column: $pause"
[[ $failed =~ ^\ 0\ of\ [1-9][0-9]*\;\ probes\ 0\ of\ [1-9] ]] || fail "failed column: $failed"
[[ $revert =~ ^\ ok\ \( ]] || fail "revert column: $revert"
grep -q '"ok": true' "$work/run/apply.json" || fail "apply.json does not say ok"
while read -r what pid; do
    kill -0 "$pid" 2>/dev/null && fail "the $what ($pid) is still running after the trial"
done <"$work/run/pids"
grep -q '^server ' "$work/run/pids" || fail "no server recorded in pids"

# --- bad input: one line, exit 2 -------------------------------------------
check_bad() {  # check_bad WHAT ARGS...
    local what=$1; shift
    "$trial" "$@" >"$work/bad.out" 2>"$work/bad.err"
    local rc=$?
    [ $rc -eq 2 ] || fail "$what: exit $rc, expected 2"
    [ "$(wc -l <"$work/bad.err")" -eq 1 ] || fail "$what: not one line: $(cat "$work/bad.err")"
    grep -qF -- "$what" "$work/bad.err" || fail "$what: the error does not say it: $(cat "$work/bad.err")"
}
check_bad "--load is missing" "${args[@]}"
check_bad "is not a directory" "${args[@]}" --load true --old "$work/nowhere"
check_bad "unknown option '--lod'" "${args[@]}" --lod true
check_bad "must be a whole number" "${args[@]}" --load true --apply-after soon
check_bad "are the same tree" "${args[@]}" --load true --new "$work/v1"

# --- interrupted in the middle of its load ---------------------------------
# Job control gives the trial its own process group, as a shell does, and leaves SIGINT to it
# (a script's background command would otherwise ignore SIGINT, and bash cannot trap it then).
# The first trial's pids file must not be mistaken for this one's (the trial removes it as it starts).
rm -f "$work/run/pids"
set -m
"$trial" "${args[@]}" --no-build --work "$work/run" --apply-after 60 \
    --load 'wrk -t1 -c4 -d120s http://127.0.0.1:$PORT/index.html' >"$work/int.out" 2>&1 &
trial_pid=$!
set +m
for _ in $(seq 600); do   # up to 60 s: the server, the load and the probe started
    [ "$(grep -Ec '^(server|load|probe) ' "$work/run/pids" 2>/dev/null)" = 3 ] && break
    kill -0 "$trial_pid" 2>/dev/null || fail "the trial ended early: $(cat "$work/int.out")"
    sleep 0.1
done
[ "$(grep -Ec '^(server|load|probe) ' "$work/run/pids")" = 3 ] || fail "the trial did not start its load within 60 s"
kill -INT -- "-$trial_pid"
for _ in $(seq 300); do kill -0 "$trial_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$trial_pid" 2>/dev/null && fail "the trial did not end within 30 s of SIGINT: $(cat "$work/int.out"; ps -eo pid,pgid,stat,etime,args | awk -v g="$trial_pid" '$2 == g')"
wait "$trial_pid"
rc=$?
trial_pid=
[ $rc -eq 130 ] || fail "an interrupted trial exited with $rc, expected 130"
while read -r what pid; do
    kill -0 "$pid" 2>/dev/null && fail "the $what ($pid) is still running after ^C"
done <"$work/run/pids"
passed=1
echo "trial_test: PASS"
