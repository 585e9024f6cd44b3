#!/usr/bin/env bash
# graft demo: a live update of a running key-value server under load.
#
#   scripts/demo.sh BUILD_DIR          (make demo runs: scripts/demo.sh build)
#
# Builds examples/kvstore v1 .. v4 with BUILD_DIR/bin/graft-cc into a
# temporary directory (with its own graft store), starts v1, writes keys and a
# list with redis-cli, shows the v1 bug (LRANGE with a negative start), starts
# redis-benchmark, generates the patch while it runs (graft diff --explain)
# and applies it in the middle of the load (graft apply --json). Then it shows the fix,
# applies v2 -> v3 and v3 -> v4 (a data change: every live struct kv_entry
# gains a field, transformed at commit) under the same load, checks EXPIRE on
# an old key, reads every key written before the updates back, waits for the benchmark and
# checks that no request failed. Prints a summary; exits non-zero if anything
# is wrong. The server and the benchmark are killed by PID on exit, and the
# temporary directory is removed.
set -u -o pipefail

NKEYS=1000              # keys written before the update
CLIENTS=16              # redis-benchmark connections
LOAD_MS=7000            # how long the benchmark should run (calibrated)
TESTS=set,get,lpush,lrange_100

usage() { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
[ $# -eq 1 ] || usage

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
fail() { echo "demo: FAIL: $*" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" 2>/dev/null && pwd) || fail "no build directory $1 (run make first)"
graft=$build/bin/graft
graft_cc=$build/bin/graft-cc
[ -x "$graft" ] && [ -x "$graft_cc" ] || fail "$build/bin/graft or graft-cc missing (run make first)"
for tool in redis-cli redis-benchmark make timeout; do
    command -v "$tool" >/dev/null || fail "$tool not found (make demo installs redis-tools)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/graft-demo.XXXXXX") || fail "mktemp"
export GRAFT_STORE=$work/store
pid=
bpid=

cleanup() {
    if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
        kill "$bpid" 2>/dev/null
        wait "$bpid" 2>/dev/null
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
cli() { timeout 10 redis-cli -p "$port" "$@"; }
info_field() { cli info | tr -d '\r' | sed -n "s/^$1://p"; }
alive() { kill -0 "$pid" 2>/dev/null || fail "the server died: $(cat "$work/server.err")"; }
# json_field NAME FILE: a number or string field of graft's flat JSON output
json_field() {
    grep -o "\"$1\": *[^,}]*" "$2" | head -1 | sed 's/^[^:]*: *//; s/^"//; s/"$//'
}

# ------------------------------------------------------------------ build --

say "Building examples/kvstore v1 .. v4 with graft-cc (store: \$GRAFT_STORE in $work)"
for v in v1 v2 v3 v4; do
    mkdir -p "$work/$v"
    cp "$root/examples/kvstore/$v/Makefile" "$root/examples/kvstore/$v"/*.[ch] "$work/$v/" ||
        fail "cannot copy examples/kvstore/$v"
    make -C "$work/$v" CC="$graft_cc" >"$work/build-$v.log" 2>&1 ||
        fail "building $v with graft-cc failed:
$(tail -20 "$work/build-$v.log")"
    echo "  $v/kvstore built"
done

# ------------------------------------------------------------------ start --

say "Starting kvstore v1"
"$work/v1/kvstore" --port 0 --threads 4 >"$work/server.out" 2>"$work/server.err" &
pid=$!
ready=
for _ in $(seq 200); do                                 # up to 10 s
    ready=$(grep -m1 ' ready on port ' "$work/server.out")
    [ -n "$ready" ] && break
    alive
    sleep 0.05
done
[ -n "$ready" ] || fail "no ready line from kvstore within 10 s"
[[ $ready =~ ^kvstore\ v1\ ready\ on\ port\ ([0-9]+)$ ]] || fail "unexpected ready line: $ready"
port=${BASH_REMATCH[1]}
echo "  $ready (pid $pid)"

# ------------------------------------------------------------- some state --

say "Writing $NKEYS keys and a list with redis-cli"
for i in $(seq "$NKEYS"); do echo "SET demo:key:$i value-$i-$((i * 7919 % 1000003))"; done >"$work/set.txt"
for i in $(seq "$NKEYS"); do echo "value-$i-$((i * 7919 % 1000003))"; done >"$work/values.want"
got=$(cli <"$work/set.txt" | grep -c '^OK$')
[ "$got" -eq "$NKEYS" ] || fail "only $got of $NKEYS SETs answered OK"
[ "$(cli rpush demo:list a b c d e)" == 5 ] || fail "RPUSH demo:list"
echo "  SET demo:key:1 .. demo:key:$NKEYS;  RPUSH demo:list a b c d e"
echo "  DBSIZE: $(cli dbsize)"

say "The v1 bug: LRANGE with a negative start index (see examples/kvstore/CHANGES.md)"
before=$(cli lrange demo:list -2 -1 | tr '\n' ' ')
before=${before% }
echo "  redis-cli LRANGE demo:list -2 -1  ->  $before     (the last two elements are: d e)"
[ "$before" == "a b c d e" ] || fail "v1 should show the bug (a b c d e), got: $before"

# ---------------------------------------------------------------- the load --

say "Starting redis-benchmark ($TESTS, $CLIENTS clients)"
t0=$(now_ms)
timeout 60 redis-benchmark -p "$port" -t "$TESTS" -n 2000 -c "$CLIENTS" -q \
    >"$work/calib.out" 2>"$work/calib.err" || fail "redis-benchmark (calibration) failed: $(cat "$work/calib.err")"
t1=$(now_ms)
# Time per 2000 requests of every test, from the rates it reported.
calib_ms=$(tr '\r' '\n' <"$work/calib.out" |
    awk '/requests per second/ { for (i = 1; i < NF; i++) if ($(i + 1) == "requests") r = $i;
                                 if (r > 0) ms += 2000 * 1000 / r }
         END { printf "%d", ms }')
[ "${calib_ms:-0}" -gt 0 ] || calib_ms=$((t1 - t0))
n=$(( 2000 * LOAD_MS / calib_ms ))
[ "$n" -lt 5000 ] && n=5000
[ "$n" -gt 2000000 ] && n=2000000
e0=$(info_field total_error_replies)
c0=$(info_field total_commands_processed)
[ -n "$e0" ] && [ -n "$c0" ] || fail "INFO lacks total_error_replies/total_commands_processed"
echo "  calibration: 2000 requests per test took $calib_ms ms in all ($((t1 - t0)) ms with connection set-up);"
echo "  running -n $n (about $((LOAD_MS / 1000)) s) in the background"
timeout 120 redis-benchmark -p "$port" -t "$TESTS" -n "$n" -c "$CLIENTS" -q \
    >"$work/bench.out" 2>"$work/bench.err" &
bpid=$!
bench_start=$(now_ms)

# ---------------------------------------------------------------- the patch --

say "Generating the patch under load: graft diff v1/kvstore v2/kvstore -o fix.graft --explain"
"$graft" diff "$work/v1/kvstore" "$work/v2/kvstore" -o "$work/fix.graft" --explain \
    >"$work/explain.txt" 2>"$work/diff.err" ||
    fail "graft diff failed: $(cat "$work/diff.err")"
sed 's/^/  /' "$work/explain.txt"
grep -Eq '^ +(replace|add) +main ' "$work/explain.txt" && fail "the patch replaces main (it never returns)"
changed=$(awk '$1 == "replace" || $1 == "add" { name = $2; $1 = ""; $2 = "";
                sub(/^ +/, ""); printf "%s (%s)\n", name, $0 }' "$work/explain.txt")
[ -n "$changed" ] || fail "graft diff --explain lists no function"

# Apply in the middle: once the server has processed about 2 of the 5 tests'
# requests (SET, GET, LPUSH, LPUSH for LRANGE, LRANGE_100).
deadline=$(( $(now_ms) + 30000 ))
while :; do
    kill -0 "$bpid" 2>/dev/null || fail "redis-benchmark ended before the update: $(cat "$work/bench.err")"
    c=$(info_field total_commands_processed)
    [ -n "$c" ] && [ $((c - c0)) -ge $((2 * n)) ] && break
    [ "$(now_ms)" -lt "$deadline" ] || fail "redis-benchmark made no progress within 30 s"
    sleep 0.1
done

say "Applying the patch under load: graft apply $pid fix.graft --json"
c_before=$(info_field total_commands_processed)
ta=$(now_ms)
"$graft" apply "$pid" "$work/fix.graft" --json >"$work/apply.json" 2>"$work/apply.err"
rc=$?
tb=$(now_ms)
c_after=$(info_field total_commands_processed)
sed 's/^/  /' "$work/apply.json"
[ $rc -eq 0 ] || fail "graft apply exited with $rc: $(cat "$work/apply.err")"
alive
pause_us=$(json_field pause_us "$work/apply.json")
total_ms=$(json_field total_ms "$work/apply.json")
[ -n "$total_ms" ] && total_ms=$(printf '%.1f' "$total_ms")
prepare_us=$(json_field prepare_us "$work/apply.json")
threads=$(json_field threads "$work/apply.json")
patch_id=$(json_field patch_id "$work/apply.json")
[ -n "$pause_us" ] && [ -n "$total_ms" ] || fail "graft apply --json lacks pause_us/total_ms"
kill -0 "$bpid" 2>/dev/null && during_load="while redis-benchmark was running" ||
    during_load="AFTER redis-benchmark had finished"
echo "  applied $during_load, $(( (ta - bench_start) / 1000 )).$(( (ta - bench_start) % 1000 / 100 )) s into it"

say "graft status $pid"
"$graft" status "$pid" 2>&1 | sed 's/^/  /'
"$graft" status "$pid" 2>/dev/null | grep -q "$patch_id" || fail "graft status does not list patch $patch_id"

# ------------------------------------------------------------ after update --

say "The fix, live (still under load)"
after=$(cli lrange demo:list -2 -1 | tr '\n' ' ')
after=${after% }
echo "  redis-cli LRANGE demo:list -2 -1  ->  $after"
[ "$after" == "d e" ] || fail "after the update LRANGE demo:list -2 -1 should be 'd e', got: $after"
version=$(info_field kvstore_version)
echo "  INFO kvstore_version: $version   (same process: pid $pid, port $port)"
[ "$version" == v2 ] || fail "INFO kvstore_version is $version, expected v2"

# ----------------------------------------------------- a data change, live --

say "Two more updates under load: v2 -> v3 (APPEND), then v3 -> v4, whose struct kv_entry gains a field"
for step in "v2 v3" "v3 v4"; do
    read -r from to <<<"$step"
    "$graft" diff "$work/$from/kvstore" "$work/$to/kvstore" -o "$work/$to.graft" --explain \
        >"$work/explain-$to.txt" 2>"$work/diff-$to.err" || fail "graft diff $from $to failed: $(cat "$work/diff-$to.err")"
    "$graft" apply "$pid" "$work/$to.graft" --json >"$work/apply-$to.json" 2>"$work/apply-$to.err" ||
        fail "graft apply ($from -> $to) failed: $(cat "$work/apply-$to.err")"
    alive
    echo "  $from -> $to applied: pause $(json_field pause_us "$work/apply-$to.json") us, $(json_field objects "$work/apply-$to.json") live objects transformed"
done
sed -n '/^data:/,$p' "$work/explain-v4.txt" | grep -v '^  note' | sed 's/^/  /'
data_objects=$(json_field objects "$work/apply-v4.json")
data_pause=$(json_field pause_us "$work/apply-v4.json")
data_migrate=$(json_field migrate_us "$work/apply-v4.json")
[ "${data_objects:-0}" -ge "$NKEYS" ] || fail "v3 -> v4 transformed ${data_objects:-0} objects, expected at least $NKEYS"
[ "$(info_field kvstore_version)" == v4 ] || fail "INFO kvstore_version is not v4 after the data update"
ttl=$(cli expire demo:key:1 1000)$(cli ttl demo:key:1)
echo "  redis-cli EXPIRE demo:key:1 1000; TTL demo:key:1  ->  $(cli ttl demo:key:1)   (new in v4, on an entry made by v1)"
[ "$ttl" == 11000 ] || fail "EXPIRE/TTL on an old key answered '$ttl', expected 1 then 1000"

say "Reading back the $NKEYS keys written before the updates"
for i in $(seq "$NKEYS"); do echo "GET demo:key:$i"; done | cli >"$work/values.got" || fail "GET keys"
intact=$(awk 'NR == FNR { want[FNR] = $0; next } want[FNR] == $0 { ok++ } END { print ok + 0 }' \
         "$work/values.want" "$work/values.got")
echo "  $intact of $NKEYS values read back unchanged"
list=$(cli lrange demo:list 0 -1 | tr '\n' ' ')
list=${list% }
echo "  LRANGE demo:list 0 -1 -> $list"

say "Waiting for redis-benchmark to finish"
deadline=$(( $(now_ms) + 90000 ))
while kill -0 "$bpid" 2>/dev/null; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "redis-benchmark still running after 90 s"
    sleep 0.1
done
wait "$bpid"
brc=$?
bpid=
bench_ms=$(( $(now_ms) - bench_start ))
tr '\r' '\n' <"$work/bench.out" | sed 's/^ *//' | grep 'requests per second' >"$work/bench.rates"
sed 's/^/  /' "$work/bench.rates"
[ $brc -eq 0 ] || fail "redis-benchmark exited with $brc: $(cat "$work/bench.err")"
[ ! -s "$work/bench.err" ] || fail "redis-benchmark reported: $(cat "$work/bench.err")"
for t in SET GET LPUSH "LRANGE_100 (first 100 elements)"; do
    grep -q "^$t: " "$work/bench.rates" || fail "redis-benchmark gave no result for $t"
done
alive
e1=$(info_field total_error_replies)
errors=$((e1 - e0))
[ -s "$work/server.err" ] && fail "the server wrote to stderr: $(cat "$work/server.err")"

# ------------------------------------------------------------------ summary --

problems=()
[ "$errors" -eq 0 ] || problems+=("$errors error replies during the benchmark")
[ "$intact" -eq "$NKEYS" ] || problems+=("$((NKEYS - intact)) of $NKEYS keys lost or changed")
[ "$list" == "a b c d e" ] || problems+=("demo:list changed: $list")
[[ $during_load == while* ]] || problems+=("the update was not applied during the load")

echo
echo "=========================== graft demo: summary ==========================="
printf '  %-16s %s\n' "update" "kvstore v1 -> v2, patch $patch_id, pid $pid (same process, same port $port)"
first=1
while IFS= read -r line; do
    printf '  %-16s %s\n' "$([ $first = 1 ] && echo "what changed")" "$line"
    first=0
done <<<"$changed"
printf '  %-16s %s\n' "behaviour" "LRANGE demo:list -2 -1: before '$before', after '$after'"
printf '  %-16s %s\n' "pause" "$threads threads stopped for ${pause_us} us (pause_us); prepare ${prepare_us} us; graft apply total ${total_ms} ms"
printf '  %-16s %s\n' "served" "$((c_after - c_before)) requests while graft apply ran ($((tb - ta)) ms wall, INFO before/after);"
printf '  %-16s %s\n' "" "$((n * $(wc -l <"$work/bench.rates"))) by redis-benchmark in all ($CLIENTS clients, $((bench_ms / 1000)).$((bench_ms % 1000 / 100)) s), every one answered"
printf '  %-16s %s\n' "errors" "$errors error replies (INFO total_error_replies), redis-benchmark: exit $brc, no error output"
printf '  %-16s %s\n' "data change" "then v2 -> v3 -> v4 under the same load: $data_objects live objects (struct kv_entry +8 bytes,"
printf '  %-16s %s\n' "" "struct kv_list retyped) transformed in place in $data_migrate us, inside a ${data_pause} us pause"
printf '  %-16s %s\n' "keys intact" "$intact/$NKEYS keys and the list written before the updates read back unchanged"
if [ ${#problems[@]} -eq 0 ]; then
    printf '  %-16s %s\n' "result" "PASS"
    echo "==========================================================================="
    exit 0
fi
printf '  %-16s %s\n' "result" "FAIL: $(IFS=';'; echo "${problems[*]}")"
echo "==========================================================================="
exit 1
