#!/usr/bin/env bash
# Soak benchmark: CYCLES apply/revert cycles of an example patch (kvstore
# v1 -> v2, examples/kvstore) on a server under continuous redis-benchmark
# load, from one long-lived driver process (bench/soak_driver.cpp: the
# library calls of `graft apply` and `graft revert`).
#
#   bench/soak.sh BUILD_DIR [CYCLES]          (CYCLES: 1000 by default)
#
# Counts failed requests (error replies the server counted, failed
# redis-benchmark runs, a connection opened before the soak that no longer
# answers), failed cycles, and leaks: the driver's own descriptors, resident
# memory and heap after the first cycle and after the last; the server's
# descriptors, mappings, threads and resident memory before the soak and
# after it (once the load's connections are closed). Prints the figures and,
# as the very last line:
#   soak: C cycles, F failed cycles, R failed requests, leaks: none | WHAT
# Exit status 0 when nothing failed and nothing leaked.
set -u -o pipefail

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 BUILD_DIR [CYCLES]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" 2>/dev/null && pwd) || { echo "soak: no build directory $1" >&2; exit 2; }
cycles=${2:-1000}
driver=$build/bin/soak_driver
for tool in "$build/bin/graft" "$driver"; do
    [ -x "$tool" ] || { echo "soak: $tool missing (build first)" >&2; exit 2; }
done
for tool in redis-cli redis-benchmark; do
    command -v $tool >/dev/null || { echo "soak: $tool not found (scripts/deps.sh bench installs redis-tools)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/graft-soak.XXXXXX")
export GRAFT_STORE=$work/store
pid= loadpid= confd=
cleanup() {
    touch "$work/load.stop"
    [ -n "$loadpid" ] && { kill "$loadpid" 2>/dev/null; wait "$loadpid" 2>/dev/null; }
    [ -n "$confd" ] && exec {confd}>&-
    [ -n "$pid" ] && { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cli() { timeout 10 redis-cli -p "$port" "$@"; }
info() { cli info | tr -d '\r' | sed -n "s/^$1://p"; }
fds() { ls /proc/"$pid"/fd | wc -l; }
mappings() { wc -l </proc/"$pid"/maps; }
regions() { grep -c 'graft:' /proc/"$pid"/maps; }
threads() { ls /proc/"$pid"/task | wc -l; }
rss() { awk '/^VmRSS:/ { print $2 }' /proc/"$pid"/status; }
# The mappings, each as its permissions and file (addresses and anonymous growth aside).
map_list() { awk '{ print $2, $6 }' /proc/"$pid"/maps | sort; }

mkdir -p "$work/store"
for v in v1 v2; do
    dir=$("$root/scripts/example_build.sh" kvstore $v "$build") || { echo "soak: kvstore $v does not build" >&2; exit 1; }
    eval "dir_$v=\$dir"
    ln -sfn "$dir/../store"/* "$work/store/"
done
"$build/bin/graft" diff "$dir_v1/kvstore" "$dir_v2/kvstore" -o "$work/p.graft" >/dev/null ||
    { echo "soak: graft diff failed" >&2; exit 1; }

"$dir_v1/kvstore" --port 0 --threads 4 >"$work/server.out" 2>"$work/server.err" &
pid=$!
for _ in $(seq 200); do grep -q ' ready on port ' "$work/server.out" && break; sleep 0.05; done
port=$(sed -n 's/^kvstore v1 ready on port \([0-9]*\)$/\1/p' "$work/server.out")
[ -n "$port" ] || { echo "soak: the server did not start: $(cat "$work/server.err")" >&2; exit 1; }
cli set soak:key before >/dev/null
exec {confd}<>"/dev/tcp/127.0.0.1/$port"

before="fds $(fds) mappings $(mappings) threads $(threads) rss_kib $(rss)"
map_list >"$work/maps.before"
errors0=$(info total_error_replies)
requests0=$(info total_commands_processed)

# Continuous load: back-to-back redis-benchmark runs until load.stop exists.
(
    i=0
    while [ ! -e "$work/load.stop" ]; do
        i=$((i + 1))
        if ! timeout 60 redis-benchmark -p "$port" -t set,get,incr,lpush,lrange_100 -n 5000 -c 16 -q \
                >"$work/load.out" 2>>"$work/load.err"; then
            echo "redis-benchmark run $i failed" >>"$work/load.err"
        elif [ "$(tr '\r' '\n' <"$work/load.out" | grep -c "requests per second")" -ne 6 ]; then
            echo "redis-benchmark run $i: not every test reported a rate" >>"$work/load.err"
        fi
    done
) &
loadpid=$!

started=$(date +%s)
"$driver" "$pid" "$work/p.graft" "$cycles" 2000 >"$work/driver.json" 2>"$work/driver.err"
driver_rc=$?
elapsed=$(( $(date +%s) - started ))
touch "$work/load.stop"
wait "$loadpid"; loadpid=

kill -0 "$pid" 2>/dev/null || { echo "soak: the server died: $(tail -3 "$work/server.err")" >&2; exit 1; }
# The load's connections close: wait for the server to let go of them.
want_fds=${before#fds }; want_fds=${want_fds%% *}
for _ in $(seq 100); do [ "$(fds)" -le "$want_fds" ] && break; sleep 0.05; done
after="fds $(fds) mappings $(mappings) threads $(threads) rss_kib $(rss)"
map_list >"$work/maps.after"
requests=$(( $(info total_commands_processed) - requests0 ))
failed=$(( $(info total_error_replies) - errors0 ))
if [ -s "$work/load.err" ]; then
    failed=$((failed + $(grep -c . "$work/load.err")))
    echo "soak: client: $(head -3 "$work/load.err" | tr '\n' ' ')" >&2
fi
printf 'PING\r\n' >&"$confd"; IFS= read -r -t 5 pong <&"$confd"
[ "${pong%$'\r'}" == "+PONG" ] || { failed=$((failed + 1)); echo "soak: the connection opened before the soak was dropped" >&2; }
[ "$(cli get soak:key)" == before ] || { failed=$((failed + 1)); echo "soak: soak:key lost its value" >&2; }
version=$(info kvstore_version)

grep -v '^soak_driver: [0-9]* cycles' "$work/driver.err" >&2
echo "soak: the driver's heap in use every 100 cycles:" $(sed -n 's/.*heap in use \([0-9]*\) bytes/\1/p' "$work/driver.err")
echo "soak: driver: $(tr -d '\n' <"$work/driver.json" | tr -s ' ')"
echo "soak: server before: $before"
echo "soak: server after:  $after (graft regions left: $(regions), running $version)"
echo "soak: $requests requests served in ${elapsed} s"
failed_cycles=$(sed -n 's/.*"failed_cycles": *\([0-9]*\).*/\1/p' "$work/driver.json")
[ -n "$failed_cycles" ] || failed_cycles=$cycles
leaks=()
set -- $before; b_fds=$2 b_maps=$4 b_threads=$6 b_rss=$8
set -- $after;  a_fds=$2 a_maps=$4 a_threads=$6 a_rss=$8
[ "$a_fds" -le "$b_fds" ] || leaks+=("server descriptors $b_fds -> $a_fds")
if [ "$a_maps" -gt "$b_maps" ]; then
    echo "soak: mappings added (permissions, file):" $(comm -13 "$work/maps.before" "$work/maps.after" | tr '\n' ';')
    echo "soak: mappings gone (permissions, file):" $(comm -23 "$work/maps.before" "$work/maps.after" | tr '\n' ';')
    # Only a mapping of a file, or one named by graft, counts as leaked: the
    # server's allocator maps and splits anonymous memory as the load goes.
    comm -13 "$work/maps.before" "$work/maps.after" | awk '$2 != ""' | grep -q . &&
        leaks+=("server mappings of files $b_maps -> $a_maps")
fi
[ "$a_threads" -eq "$b_threads" ] || leaks+=("server threads $b_threads -> $a_threads")
[ "$(regions)" -eq 0 ] || leaks+=("$(regions) graft regions left mapped")
[ "$version" == v1 ] || leaks+=("the server runs $version after the last revert")
g_first=$(sed -n '/graft_after_first_cycle/,/}/s/.*"descriptors": *\([0-9]*\).*/\1/p' "$work/driver.json")
g_last=$(sed -n '/graft_after_last_cycle/,/}/s/.*"descriptors": *\([0-9]*\).*/\1/p' "$work/driver.json")
[ -n "$g_first" ] && [ -n "$g_last" ] && [ "$g_last" -gt "$g_first" ] && leaks+=("graft descriptors $g_first -> $g_last")
echo "soak: server resident memory $b_rss -> $a_rss KiB (its data grows with the load's keys)"
leak_text=none; [ ${#leaks[@]} -gt 0 ] && leak_text=$(IFS=';'; echo "${leaks[*]}")
echo "soak: $cycles cycles, $failed_cycles failed cycles, $failed failed requests, leaks: $leak_text"
[ $driver_rc -eq 0 ] && [ "$failed" -eq 0 ] && [ ${#leaks[@]} -eq 0 ]
