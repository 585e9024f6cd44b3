#!/usr/bin/env bash
# graft evolution test: every version of the example servers in turn, live,
# under load from real clients.
#
#   scripts/evolution.sh BUILD_DIR [--short]      (make evolution)
#
# For each server (examples/kvstore with redis-benchmark and redis-cli,
# examples/httpd with wrk and curl): builds v1..v7 with BUILD_DIR/bin/graft-cc
# into a temporary directory (own graft store), starts v1, and for each step
# vN -> vN+1: writes data, starts the load, runs `graft diff RUNNING vN+1`
# (with --transform vN+1/graft-update.c when the step has update-time code)
# and, if it gives a patch, `graft apply` in the middle of the load. Each diff is
# from the version actually running: after a refusal the server still runs
# the old version, so the later steps are diffed from it. After each step it
# checks that the client saw no error and no dropped connection, that a
# connection opened at start-up still works, that everything written before
# reads back, and that the server behaves as the version it now runs (the new
# one when applied, the old one when refused).
#
# Prints a table, and as the very last line:
#   evolution: K/N updates applied, F failed requests, L values lost
# Exit status 0 if the run itself worked (refusals are results, not failures);
# 1 if requests failed, values were lost, a server died or behaved as the
# wrong version; 2 on bad usage.
#
# --short: kvstore only, shorter load (for make test): each step's load runs
# until the server has served 5000 requests before the update and 5000 after
# it (2 s at most), instead of 2 s.
#
# The versions are built by scripts/example_build.sh, once per content, in
# BUILD_DIR/test-cache/examples (shared with the example tests).
set -u -o pipefail

usage() { echo "usage: $0 BUILD_DIR [--short]" >&2; exit 2; }
build_arg=
short=0
for a in "$@"; do
    case $a in
        --short) short=1 ;;
        -*) usage ;;
        *) [ -z "$build_arg" ] || usage; build_arg=$a ;;
    esac
done
[ -n "$build_arg" ] || usage

if [ $short = 1 ]; then
    SERVERS=(kvstore); LOAD_MS=2000; APPLY_TIMEOUT_MS=1000; KV_KEYS=100; HTTP_KEYS=20; LOAD_REQUESTS=5000
else
    SERVERS=(kvstore httpd); LOAD_MS=3000; APPLY_TIMEOUT_MS=1500; KV_KEYS=200; HTTP_KEYS=40
fi
CLIENTS=16
VERSIONS=7      # v1..v7 of each server

root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "evolution: $*"; }
die() { echo "evolution: error: $*" >&2; echo "evolution: 0/0 updates applied, 0 failed requests, 0 values lost"; exit 1; }

build=$(cd "$build_arg" 2>/dev/null && pwd) || die "no build directory $build_arg (run make first)"
graft=$build/bin/graft
graft_cc=$build/bin/graft-cc
[ -x "$graft" ] && [ -x "$graft_cc" ] || die "$build/bin/graft or graft-cc missing (run make first)"
for tool in make timeout redis-cli redis-benchmark; do
    command -v $tool >/dev/null || die "$tool not found (make evolution installs redis-tools, wrk, curl)"
done
if [ $short = 0 ]; then
    for tool in curl wrk; do
        command -v $tool >/dev/null || die "$tool not found (make evolution installs redis-tools, wrk, curl)"
    done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/graft-evolution.XXXXXX") || die "mktemp"
export GRAFT_STORE=$work/store
pid=            # the server
loadpid=        # the load generator (a subshell running the client)
confd=          # a connection opened at start-up, kept across every step

stop_load() {
    if [ -n "$loadpid" ] && kill -0 "$loadpid" 2>/dev/null; then
        touch "$work/load.stop"
        for _ in $(seq 100); do kill -0 "$loadpid" 2>/dev/null || break; sleep 0.1; done
        kill "$loadpid" 2>/dev/null
    fi
    [ -n "$loadpid" ] && wait "$loadpid" 2>/dev/null
    loadpid=
}
stop_server() {
    [ -n "$confd" ] && exec {confd}>&-
    confd=
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    fi
    [ -n "$pid" ] && wait "$pid" 2>/dev/null
    pid=
}
cleanup() {
    stop_load
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
alive() { [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
nthreads() { ls /proc/"$pid"/task 2>/dev/null | wc -l; }
thread_names() { cat /proc/"$pid"/task/*/comm 2>/dev/null | tr '\n' ' '; }
json_field() { grep -o "\"$1\": *[^,}]*" "$2" | head -1 | sed 's/^[^:]*: *//; s/^"//; s/"$//'; }

# kinds SERVER N: the "kind of change" column of step vN -> vN+1 in CHANGES.md,
# without the details in parentheses.
kinds() {
    awk -F'|' -v a="v$2" -v b="v$(($2 + 1))" '
        $2 ~ ("^ *" a " *(->|→) *" b " *$") { print $(NF - 1); exit }' "$root/examples/$1/CHANGES.md" |
    sed -e ':a' -e 's/ *([^()]*)//g; ta' -e 's/`//g; s/^ *//; s/ *$//'
}

# ----------------------------------------------------------------- totals --

applied_total=0; steps_total=0; failed_total=0; lost_total=0; broken=0
table=()
problems=()

# ------------------------------------------------------------------ kvstore --

kv_cli() { timeout 10 redis-cli -p "$port" "$@"; }
kv_info() { kv_cli info | tr -d '\r' | sed -n "s/^$1://p"; }
kv_requests() { kv_info total_commands_processed; }
kv_errors() { kv_info total_error_replies; }

kv_start() {        # kv_start BIN
    KVSTORE_INSTANCE=evo "$1" --port 0 --threads 4 >"$work/server.out" 2>"$work/server.err" &
    pid=$!
    local ready=
    for _ in $(seq 200); do                             # up to 10 s
        ready=$(grep -m1 ' ready on port ' "$work/server.out")
        [ -n "$ready" ] && break
        alive || break
        sleep 0.05
    done
    [[ $ready =~ ^kvstore\ v1\ ready\ on\ port\ ([0-9]+)$ ]] || return 1
    port=${BASH_REMATCH[1]}
    exec {confd}<>"/dev/tcp/127.0.0.1/$port" || return 1
    kv_cli rpush evo:neg a b c >/dev/null &&
    kv_cli set evo:counter 0 >/dev/null
}

# The connection opened at start-up still answers.
kv_conn_ok() {
    local line
    printf 'PING\r\n' 2>/dev/null 1>&"$confd" || return 1
    IFS= read -r -t 5 line <&"$confd" || return 1
    [ "${line%$'\r'}" == "+PONG" ]
}

kv_write() {        # kv_write STEP
    local s=$1 i
    for i in $(seq "$KV_KEYS"); do echo "SET evo:s$s:k$i v$s-$i-$((i * 7919 % 100003))"; done >"$work/set.txt"
    for i in $(seq 50); do echo "INCR evo:counter"; done >>"$work/set.txt"
    echo "RPUSH evo:s$s:list a b c d e" >>"$work/set.txt"
    kv_cli <"$work/set.txt" >/dev/null || return 1
    for i in $(seq "$KV_KEYS"); do echo "v$s-$i-$((i * 7919 % 100003))"; done >>"$work/values.want"
    for i in $(seq "$KV_KEYS"); do echo "GET evo:s$s:k$i"; done >>"$work/get.txt"
}

kv_lost() {         # kv_lost STEPS: values written in steps 1..STEPS that do not read back
    local steps=$1 ok s lost
    kv_cli <"$work/get.txt" >"$work/values.got" 2>/dev/null
    ok=$(awk 'NR == FNR { want[FNR] = $0; next } want[FNR] == $0 { ok++ } END { print ok + 0 }' \
         "$work/values.want" "$work/values.got")
    lost=$(( $(wc -l <"$work/values.want") - ok ))
    for s in $(seq "$steps"); do
        [ "$(kv_cli lrange evo:s$s:list 0 -1 | tr '\n' ' ')" == "a b c d e " ] || lost=$((lost + 1))
    done
    [ "$(kv_cli get evo:counter)" == $((50 * steps)) ] || lost=$((lost + 1))
    echo "$lost"
}

# Continuous load: back-to-back redis-benchmark runs until load.stop exists.
kv_load() {
    local i=0 rc
    while [ ! -e "$work/load.stop" ]; do
        i=$((i + 1))
        timeout 30 redis-benchmark -p "$port" -t set,get,incr,lpush,lrange_100 -n 2000 \
            -c "$CLIENTS" -q >"$work/load.out.$i" 2>>"$work/load.err"
        rc=$?
        if [ $rc -ne 0 ]; then
            echo "redis-benchmark run $i exited with $rc" >>"$work/load.err"
        elif [ "$(tr '\r' '\n' <"$work/load.out.$i" | grep -c 'requests per second')" -ne 6 ]; then
            echo "redis-benchmark run $i: not every test reported a rate" >>"$work/load.err"
        fi
    done
}
kv_client_errors() { [ -s "$work/load.err" ] && grep -c . "$work/load.err" || echo 0; }

# kv_behaves R: the server answers as version R, on every step's feature.
kv_behaves() {
    local r=$1 got bad=()
    got=$(kv_info kvstore_version)
    [ "$got" == "v$r" ] || bad+=("INFO kvstore_version $got")
    got=$(kv_cli lrange evo:neg -2 -1 | tr '\n' ' ')
    if [ "$r" -ge 2 ]; then [ "$got" == "b c " ] || bad+=("LRANGE -2 -1 gives [$got], not the v2 fix");
    else [ "$got" == "a b c " ] || bad+=("LRANGE -2 -1 gives [$got], not the v1 bug"); fi
    got=$(kv_cli append evo:app x 2>&1)
    if [ "$r" -ge 3 ]; then [[ $got =~ ^[0-9]+$ ]] || bad+=("APPEND: $got");
    else [[ $got == "ERR unknown command"* ]] || bad+=("APPEND before v3: $got"); fi
    got=$(kv_cli ttl evo:neg 2>&1)
    if [ "$r" -ge 4 ]; then [ "$got" == -1 ] || bad+=("TTL: $got");
    else [[ $got == "ERR unknown command"* ]] || bad+=("TTL before v4: $got"); fi
    got=$(kv_cli client info 2>&1)
    if [ "$r" -ge 5 ]; then [[ $got == *cmds=* ]] || bad+=("CLIENT INFO: $got");
    else [[ $got == "ERR unknown subcommand"* ]] || bad+=("CLIENT INFO before v5: $got"); fi
    if [ "$r" -ge 6 ]; then
        for _ in $(seq 40); do [[ $(thread_names) == *kv-sweeper* ]] && break; sleep 0.05; done
        [[ $(thread_names) == *kv-sweeper* ]] || bad+=("no kv-sweeper thread")
    else
        [[ $(thread_names) != *kv-sweeper* ]] || bad+=("kv-sweeper thread before v6")
    fi
    got=$(kv_info instance)
    if [ "$r" -ge 7 ]; then [ "$got" == evo ] || bad+=("INFO instance [$got], not evo (set at start-up)");
    else [ -z "$got" ] || bad+=("INFO instance before v7: $got"); fi
    behaviour_msg=$(IFS=';'; echo "${bad[*]}")
    [ ${#bad[@]} -eq 0 ]
}

# -------------------------------------------------------------------- httpd --

ht_curl() { curl -s --max-time 5 "$@"; }
ht_stats() { ht_curl "http://127.0.0.1:$port/api/stats"; }
ht_requests() { ht_stats | grep -o '"requests":[0-9]*' | cut -d: -f2; }
ht_errors() { echo 0; }        # the server has no error counter: wrk counts them

ht_start() {
    mkdir -p "$work/www"
    printf '<!doctype html>\n<title>evolution</title>\n<p>index</p>\n' >"$work/www/index.html"
    printf '.a{b:c}\n' >"$work/www/app.min.css"
    HTTPD_EXTRA_HEADER="X-Graft-Extra: on" "$1" --root "$work/www" --port 0 --threads 4 >"$work/server.out" 2>"$work/server.err" &
    pid=$!
    local ready=
    for _ in $(seq 200); do
        ready=$(grep -m1 ' ready on port ' "$work/server.out")
        [ -n "$ready" ] && break
        alive || break
        sleep 0.05
    done
    [[ $ready =~ ^httpd\ v1\ ready\ on\ port\ ([0-9]+)$ ]] || return 1
    port=${BASH_REMATCH[1]}
    exec {confd}<>"/dev/tcp/127.0.0.1/$port" || return 1
    [ "$(ht_curl -o /dev/null -w '%{http_code}' -X PUT --data-binary load "http://127.0.0.1:$port/api/kv/evo-load")" == 201 ]
}

# The keep-alive connection opened at start-up still answers.
ht_conn_ok() {
    local line len=0 body
    printf 'GET /api/stats HTTP/1.1\r\nHost: evolution\r\n\r\n' 2>/dev/null 1>&"$confd" || return 1
    IFS= read -r -t 5 line <&"$confd" || return 1
    [[ $line == "HTTP/1.1 200 "* ]] || return 1
    while IFS= read -r -t 5 line <&"$confd"; do
        line=${line%$'\r'}
        [ -z "$line" ] && break
        [[ ${line,,} =~ ^content-length:\ *([0-9]+) ]] && len=${BASH_REMATCH[1]}
    done
    [ "$len" -gt 0 ] && IFS= read -r -t 5 -N "$len" body <&"$confd" && [[ $body == *'"version"'* ]]
}

ht_write() {        # ht_write STEP
    local s=$1 i args=() codes
    for i in $(seq "$HTTP_KEYS"); do
        [ $i -gt 1 ] && args+=(--next)
        args+=(-s --max-time 5 -o /dev/null -w '%{http_code}\n' -X PUT --data-binary "v$s-$i-$((i * 7919 % 100003))"
               "http://127.0.0.1:$port/api/kv/evo-s$s-k$i")
        echo "v$s-$i-$((i * 7919 % 100003)) 200" >>"$work/values.want"
        echo "http://127.0.0.1:$port/api/kv/evo-s$s-k$i" >>"$work/get.txt"
    done
    codes=$(ht_curl "${args[@]}" | sort | uniq -c | tr -s ' ')
    [ "$codes" == " $HTTP_KEYS 201" ] || return 1
    [ "$(ht_curl -X POST -d 7 "http://127.0.0.1:$port/api/counters/evo-s$s/incr")" == \
      "{\"name\":\"evo-s$s\",\"value\":7}" ]
}

ht_lost() {         # ht_lost STEPS
    local steps=$1 ok s lost
    xargs curl -s --max-time 20 -w ' %{http_code}\n' <"$work/get.txt" >"$work/values.got" 2>/dev/null
    ok=$(awk 'NR == FNR { want[FNR] = $0; next } want[FNR] == $0 { ok++ } END { print ok + 0 }' \
         "$work/values.want" "$work/values.got")
    lost=$(( $(wc -l <"$work/values.want") - ok ))
    for s in $(seq "$steps"); do
        [ "$(ht_curl "http://127.0.0.1:$port/api/counters/evo-s$s")" == \
          "{\"name\":\"evo-s$s\",\"value\":7}" ] || lost=$((lost + 1))
    done
    echo "$lost"
}

# Continuous load: wrk with a mix of files and API calls, for LOAD_MS.
ht_load() {
    cat >"$work/mix.lua" <<'EOF'
local paths = {
    {"GET", "/index.html"}, {"GET", "/app.min.css"},
    {"POST", "/api/counters/evo-load/incr"}, {"GET", "/api/kv/evo-load"},
    {"GET", "/api/stats"},
}
local reqs, n = {}, 0
function init(args)
    for i, p in ipairs(paths) do reqs[i] = wrk.format(p[1], p[2]) end
end
function request()
    n = n % #reqs + 1
    return reqs[n]
end
EOF
    local rc
    timeout $((LOAD_MS / 1000 + 20)) wrk -t2 -c"$CLIENTS" -d"$((LOAD_MS / 1000))s" -s "$work/mix.lua" \
        "http://127.0.0.1:$port/" >"$work/load.out.1" 2>&1
    rc=$?
    [ $rc -eq 0 ] || echo "wrk exited with $rc: $(tail -3 "$work/load.out.1")" >>"$work/load.err"
    grep -q ' requests in ' "$work/load.out.1" || echo "wrk: no result" >>"$work/load.err"
}
# socket errors (connect, read, write, timeout) + non-2xx/3xx responses + wrk failures
ht_client_errors() {
    local n=0 e
    e=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' \
        "$work/load.out.1")
    for x in $e; do n=$((n + x)); done
    e=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$work/load.out.1")
    n=$((n + ${e:-0}))
    [ -s "$work/load.err" ] && n=$((n + $(grep -c . "$work/load.err")))
    echo "$n"
}

ht_behaves() {
    local r=$1 got bad=() base="http://127.0.0.1:$port"
    ht_curl -o /dev/null -D "$work/head" "$base/app.min.css"
    got=$(tr -d '\r' <"$work/head" | sed -n 's/^Server: //Ip')
    [ "$got" == "graft-httpd/v$r" ] || bad+=("Server: $got")
    got=$(tr -d '\r' <"$work/head" | sed -n 's/^Content-Type: *\([^;]*\).*/\1/Ip')
    if [ "$r" -ge 2 ]; then [ "$got" == text/css ] || bad+=("app.min.css is $got, not the v2 fix");
    else [ "$got" == application/octet-stream ] || bad+=("app.min.css is $got, not the v1 bug"); fi
    got=$(ht_curl -o /dev/null -w '%{http_code}' -X POST "$base/api/counters/evo-f3/decr")
    if [ "$r" -ge 3 ]; then [ "$got" == 200 ] || bad+=("decr: $got");
    else [ "$got" == 404 ] || bad+=("decr before v3: $got"); fi
    ht_curl -o /dev/null -X PUT --data-binary x "$base/api/kv/evo-f4"
    ht_curl -o /dev/null -D "$work/head" "$base/api/kv/evo-f4"
    got=$(grep -ci '^Last-Modified:' "$work/head")
    if [ "$r" -ge 4 ]; then [ "$got" == 1 ] || bad+=("no Last-Modified");
    else [ "$got" == 0 ] || bad+=("Last-Modified before v4"); fi
    got=$(grep -ci '^X-Conn-Requests:' "$work/head")
    if [ "$r" -ge 5 ]; then [ "$got" == 1 ] || bad+=("no X-Conn-Requests");
    else [ "$got" == 0 ] || bad+=("X-Conn-Requests before v5"); fi
    if [ "$r" -ge 6 ]; then                # main + 4 workers + the reaper
        for _ in $(seq 40); do [ "$(nthreads)" -eq 6 ] && break; sleep 0.05; done
        [ "$(nthreads)" -eq 6 ] || bad+=("$(nthreads) threads, expected 6 with the reaper")
    else
        [ "$(nthreads)" -eq 5 ] || bad+=("$(nthreads) threads, expected 5")
    fi
    ht_curl -o /dev/null -D "$work/head" "$base/app.min.css"
    got=$(tr -d '\r' <"$work/head" | sed -n 's/^X-Graft-Extra: //Ip')
    if [ "$r" -ge 7 ]; then [ "$got" == on ] || bad+=("X-Graft-Extra [$got], not on (set at start-up)");
    else [ -z "$got" ] || bad+=("X-Graft-Extra before v7: $got"); fi
    behaviour_msg=$(IFS=';'; echo "${bad[*]}")
    [ ${#bad[@]} -eq 0 ]
}

# load_for MS R0: the load runs on, MS after t0; with --short, only until the
# server has served LOAD_REQUESTS requests since it had served R0 (at most MS
# after t0 even so).
load_for() {
    while [ $(( $(now_ms) - t0 )) -lt "$1" ]; do
        if [ $short = 1 ]; then
            local n
            n=$(${pre}_requests)
            [ -n "$n" ] && [ -n "$2" ] && [ "$n" -ge $(( $2 + LOAD_REQUESTS )) ] && return
        fi
        sleep 0.05
    done
}

# ------------------------------------------------------------ one server --

# row SERVER STEP RESULT PAUSE REQUESTS ERRORS LOST KINDS [DETAIL]
row() {
    table+=("$(printf '%-8s %-8s %-9s %8s %9s %6s %5s  %s' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8")")
    [ -n "${9:-}" ] && table+=("$(printf '%-17s %s' "" "$9")")
}

run_server() {      # run_server NAME (kvstore or httpd)
    local srv=$1 pre bin v running=1 target s
    case $srv in kvstore) pre=kv ;; httpd) pre=ht ;; esac
    echo
    log "== $srv: building v1..v$VERSIONS with graft-cc"
    local vdir=()    # vdir[N]: where vN is built (once per content, shared with the example tests)
    mkdir -p "$work/store" "$work/$srv"
    for v in $(seq "$VERSIONS"); do
        vdir[$v]=$("$root/scripts/example_build.sh" "$srv" "v$v" "$build" 2>"$work/$srv/build-v$v.log") || {
            problems+=("$srv v$v does not build with graft-cc: $(tail -3 "$work/$srv/build-v$v.log")")
            broken=1; steps_total=$((steps_total + VERSIONS - 1)); return
        }
        ln -sfn "${vdir[$v]}/../store"/* "$work/store/"    # its build record, for graft diff
    done
    bin=$srv
    : >"$work/values.want"; : >"$work/get.txt"
    if ! ${pre}_start "${vdir[1]}/$bin"; then
        problems+=("$srv v1 did not start: $(cat "$work/server.err")")
        broken=1; steps_total=$((steps_total + VERSIONS - 1)); stop_server; return
    fi
    log "$srv v1 running: pid $pid, port $port"
    ${pre}_behaves 1 || { problems+=("$srv v1 does not behave as v1: $behaviour_msg"); broken=1; }

    for s in $(seq $((VERSIONS - 1))); do
        target=$((s + 1))
        steps_total=$((steps_total + 1))
        local step="v$s->v$target" kind result='' pause=- detail='' reqs errs lost e0 r0 t0 c
        kind=$(kinds "$srv" "$s")
        if ! alive; then
            row "$srv" "$step" "not run" - - - - "$kind" "the server is gone"
            continue
        fi
        ${pre}_write "$s" || { problems+=("$srv $step: writing the data failed"); broken=1; }

        # The patch, from the version running now, with the step's update-time code if it has some.
        local update=()
        [ -f "$root/examples/$srv/v$target/graft-update.c" ] &&
            update=(--transform "$root/examples/$srv/v$target/graft-update.c")
        if timeout 120 "$graft" diff "${vdir[$running]}/$bin" "${vdir[$target]}/$bin" "${update[@]}" \
               -o "$work/step$s.graft" --explain >"$work/diff$s.txt" 2>"$work/diff$s.err"; then
            patch=$work/step$s.graft
        else
            patch=
            result=refused
            detail="diff v$running->v$target: $(sed 's/^graft: error: //' "$work/diff$s.err" | head -3 | tr '\n' ' ' | sed 's/ *$//')"
        fi

        # Load, and the update in the middle of it.
        rm -f "$work/load.stop" "$work/load.err" "$work"/load.out.*
        e0=$(${pre}_errors); r0=$(${pre}_requests)
        t0=$(now_ms)
        if [ $srv = kvstore ]; then kv_load & else ht_load & fi
        loadpid=$!
        load_for $((LOAD_MS / 3)) "$r0"
        if [ -n "$patch" ]; then
            c=$(${pre}_requests)
            timeout 60 "$graft" apply "$pid" "$patch" --json --timeout "$APPLY_TIMEOUT_MS" \
                >"$work/apply$s.json" 2>"$work/apply$s.err"
            local rc=$?
            kill -0 "$loadpid" 2>/dev/null || detail="the load had ended before the update finished; "
            if [ $rc -eq 0 ]; then
                result=applied
                pause=$(json_field pause_us "$work/apply$s.json")
                detail+="$(json_field functions "$work/apply$s.json") functions, $(json_field threads "$work/apply$s.json") threads, total $(json_field total_ms "$work/apply$s.json" | cut -c1-5) ms, $(( $(${pre}_requests) - c )) requests served while graft apply ran"
                running=$target
            else
                result=refused
                detail+="apply: $(sed 's/^graft: error: //' "$work/apply$s.err" | head -3 | tr '\n' ' ' | sed 's/ *$//')"
            fi
        fi
        load_for "$LOAD_MS" "$(${pre}_requests)"
        touch "$work/load.stop"
        c=$(( $(now_ms) + 60000 ))
        while kill -0 "$loadpid" 2>/dev/null && [ "$(now_ms)" -lt $c ]; do sleep 0.05; done
        stop_load

        if ! alive; then
            wait "$pid" 2>/dev/null
            c=$?
            [ $c -gt 128 ] && c="signal $((c - 128))" || c="exit status $c"
            errs=$(${pre}_client_errors)
            failed_total=$((failed_total + errs))
            problems+=("$srv $step: the server died ($c) $(tail -3 "$work/server.err")")
            broken=1
            row "$srv" "$step" "$result" "$pause" - "$errs" - "$kind" "SERVER DIED ($c); $detail"
            pid=
            continue
        fi
        reqs=$(( $(${pre}_requests) - r0 ))
        errs=$(( $(${pre}_errors) - e0 + $(${pre}_client_errors) ))
        if [ -s "$work/load.err" ]; then
            problems+=("$srv $step: client: $(head -3 "$work/load.err" | tr '\n' ' ')")
        fi
        ${pre}_conn_ok || { errs=$((errs + 1)); problems+=("$srv $step: the connection opened at start-up was dropped"); }
        lost=$(${pre}_lost "$s")
        ${pre}_behaves "$running" ||
            { broken=1; problems+=("$srv $step: runs v$running ($result) but: $behaviour_msg"); }
        [ "$errs" -eq 0 ] || problems+=("$srv $step: $errs failed requests")
        [ "$lost" -eq 0 ] || problems+=("$srv $step: $lost values lost")
        [ $result = applied ] && applied_total=$((applied_total + 1))
        failed_total=$((failed_total + errs))
        lost_total=$((lost_total + lost))
        row "$srv" "$step" "$result" "$pause" "$reqs" "$errs" "$lost" "$kind" "$detail"
        log "$srv $step: $result${pause:+, pause_us $pause}, $reqs requests, $errs errors, $lost lost${detail:+ ($detail)}"
    done
    [ -s "$work/server.err" ] && problems+=("$srv wrote to stderr: $(head -3 "$work/server.err")")
    stop_server
}

for srv in "${SERVERS[@]}"; do run_server "$srv"; done

echo
printf '%-8s %-8s %-9s %8s %9s %6s %5s  %s\n' server step result pause_us requests errors lost \
    "kinds of change (CHANGES.md)"
for line in "${table[@]}"; do echo "$line"; done
if [ ${#problems[@]} -gt 0 ]; then
    echo
    for p in "${problems[@]}"; do echo "PROBLEM: $p"; done
fi
echo "evolution: $applied_total/$steps_total updates applied, $failed_total failed requests, $lost_total values lost"
[ "$broken" -eq 0 ] && [ "$failed_total" -eq 0 ] && [ "$lost_total" -eq 0 ]
