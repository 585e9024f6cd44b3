#!/usr/bin/env bash
# Functional and load test of one kvstore version, driven by redis-cli and
# redis-benchmark (Debian redis-tools).
#
#   test.sh VERSION_DIR [PORT]
#
# Starts VERSION_DIR/kvstore (built beforehand) on PORT, or on a free port
# chosen by the kernel (--port 0) when PORT is not given, waits for its ready
# line, runs the checks and kills the server by its PID on exit. Exits
# non-zero with a FAIL message on the first failed check.
set -u

usage() { echo "usage: $0 VERSION_DIR [PORT]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage

dir=$1
port_arg=${2:-0}
bin=$dir/kvstore
label=$(basename "$(cd "$dir" 2>/dev/null && pwd)" 2>/dev/null)
label=${label:-$dir}

fail() { echo "FAIL [$label]: $*" >&2; exit 1; }
ok() { echo "  ok   $*"; }

command -v redis-cli >/dev/null || fail "redis-cli not found (apt-get install redis-tools)"
command -v redis-benchmark >/dev/null || fail "redis-benchmark not found (apt-get install redis-tools)"
[ -x "$bin" ] || fail "$bin not built (run make in $dir)"

work=$(mktemp -d "${TMPDIR:-/tmp}/kvstore-test.XXXXXX") || fail "mktemp"
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- start --

KVSTORE_INSTANCE=evo "$bin" --port "$port_arg" --threads 4 >"$work/stdout" 2>"$work/stderr" &
pid=$!

ready=
for _ in $(seq 200); do                     # up to 10 s
    ready=$(grep -m1 ' ready on port ' "$work/stdout")
    [ -n "$ready" ] && break
    kill -0 "$pid" 2>/dev/null || fail "server exited before it was ready: $(cat "$work/stderr")"
    sleep 0.05
done
[ -n "$ready" ] || fail "no ready line within 10 s"
[[ $ready =~ ^kvstore\ v([0-9]+)\ ready\ on\ port\ ([0-9]+)$ ]] || fail "bad ready line: $ready"
n=${BASH_REMATCH[1]}
port=${BASH_REMATCH[2]}
[ "$port_arg" = 0 ] || [ "$port" = "$port_arg" ] || fail "asked for port $port_arg, got $port"
case $label in
    v[0-9]*) [ "$label" = "v$n" ] || fail "directory $label runs a binary that says v$n" ;;
esac
label=v$n
echo "== kvstore v$n (pid $pid, port $port)"
ok "ready line: $ready"

# -------------------------------------------------------------- helpers --

cli() {
    if [ ${#queue_cmd[@]} -gt 0 ]; then   # a queued command would run after this one
        echo "FAIL [$label]: test.sh: flush before: redis-cli $*" >&2
        kill -TERM $$
        exit 1
    fi
    timeout 10 redis-cli -p "$port" "$@"
}

# expect and expect_err queue their command; the queue goes to the server in
# order, over one redis-cli connection, before anything else talks to it
# (flush, called by cli), and each reply is checked as if it had been the
# only command of its own redis-cli run. A PING with a marker after each
# command tells the replies apart.
queue_desc=() queue_want=() queue_kind=() queue_cmd=()
# quote ARGS...: one line for redis-cli's reader, every argument double-quoted
quote() {
    local a line=
    for a in "$@"; do a=${a//\\/\\\\}; line+=" \"${a//\"/\\\"}\""; done
    printf '%s\n' "${line# }"
}
queue() {                       # queue KIND DESC WANT ARGS...
    queue_kind+=("$1") queue_desc+=("$2") queue_want+=("$3")
    shift 3
    queue_cmd+=("$(quote "$@")")
}
flush() {
    local n=${#queue_cmd[@]} i out got rc
    [ "$n" -gt 0 ] || return 0
    for i in "${!queue_cmd[@]}"; do
        printf '%s\nPING "--reply %d--"\n' "${queue_cmd[i]}" "$i"
    done >"$work/queue"
    out=$(timeout 30 redis-cli -p "$port" <"$work/queue" 2>&1)
    rc=$?
    for i in "${!queue_cmd[@]}"; do
        if [[ $out == *"--reply $i--"* ]]; then
            got=${out%%--reply $i--*}
            out=${out#*--reply $i--}
            out=${out#$'\n'}
        else
            got=$out out=
        fi
        while [[ $got == *$'\n' ]]; do got=${got%$'\n'}; done
        local desc=${queue_desc[i]} want=${queue_want[i]} cmd=${queue_cmd[i]}
        case ${queue_kind[i]} in
            any) continue ;;
            err) [[ $got == "$want"* ]] ||
                     { queue_cmd=(); fail "$desc: redis-cli $cmd: expected error [$want...], got [$got]"; } ;;
            *)   [ "$got" == "$want" ] ||
                     { queue_cmd=(); fail "$desc: redis-cli $cmd: expected [${want//$'\n'/ | }], got [${got//$'\n'/ | }] (redis-cli exit status $rc)"; } ;;
        esac
        ok "$desc"
    done
    queue_desc=() queue_want=() queue_kind=() queue_cmd=()
}

# send ARGS...: a command whose reply is not checked.
send() { queue any "" "" "$@"; }

# expect DESC WANT ARGS...: the reply of the command is exactly WANT.
expect() { queue exact "$@"; }

# expect_err DESC PREFIX ARGS...: the command gets an error reply starting with PREFIX.
expect_err() { queue err "$@"; }

info_field() {
    cli info | tr -d '\r' | sed -n "s/^$1://p"
}

alive() { kill -0 "$pid" 2>/dev/null || fail "server died: $(cat "$work/stderr")"; }

# Raw RESP over bash's /dev/tcp, for what redis-cli cannot send.
tcp_open() { exec {tcp}<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to port $port"; }
tcp_close() { exec {tcp}>&-; }
tcp_send() { printf '%b' "$1" >&"$tcp"; }
tcp_line() {                    # next reply line without CR, or FAIL
    local line
    IFS= read -r -t 5 line <&"$tcp" || fail "$1: no reply line"
    printf '%s' "${line%$'\r'}"
}
tcp_expect() {                  # tcp_expect DESC LINE...
    local desc=$1 got
    shift
    for want in "$@"; do
        got=$(tcp_line "$desc") || exit 1
        [ "$got" == "$want" ] || fail "$desc: expected line [$want], got [$got]"
    done
    ok "$desc"
}

# ---------------------------------------------------------- basic checks --

expect "FLUSHALL" "OK" flushall
expect "PING" "PONG" ping
expect "PING message" "hello world" ping "hello world"
expect "SET" "OK" set k1 "some value"
expect "GET round-trip" "some value" get k1
expect "GET missing is nil" "" get nosuchkey
printf 'line one\r\nline two\n\0binary\377' >"$work/value"
flush
cli -x set bin <"$work/value" >/dev/null || fail "SET -x"
[ "$(cli get bin | head -c -1 | od -An -tx1)" == "$(od -An -tx1 <"$work/value")" ] ||
    fail "binary value with CR, LF, NUL does not round-trip"
ok "binary-safe value round-trip"
head -c 450000 /dev/urandom | base64 -w0 >"$work/big"
cli -x set big <"$work/big" >/dev/null || fail "SET -x big"
cli get big | head -c -1 | cmp -s - "$work/big" || fail "600 kB value does not round-trip"
ok "600 kB value round-trip"
expect "SET overwrites" "OK" set k1 other
expect "GET after overwrite" "other" get k1
expect "MSET" "OK" mset m1 a m2 b m3 c
expect "GET m2" "b" get m2
expect_err "MSET odd arguments" "ERR wrong number of arguments" mset m1 a m2
expect "EXISTS" "3" exists m1 m2 nosuch m3
expect "DEL" "2" del m1 m2 nosuch
expect "EXISTS after DEL" "0" exists m1 m2
expect "DBSIZE" "4" dbsize                   # k1 bin big m3
expect "INCR new key" "1" incr counter
expect "INCR" "2" incr counter
expect "GET counter" "2" get counter
expect "SET big number" "OK" set maxed 9223372036854775807
expect_err "INCR overflow" "ERR increment or decrement would overflow" incr maxed
expect "value kept after failed INCR" "9223372036854775807" get maxed
expect "SET text" "OK" set text abc
expect_err "INCR on text" "ERR value is not an integer" incr text
expect_err "unknown command" "ERR unknown command" nosuchcommand x
expect_err "wrong arity" "ERR wrong number of arguments" get

# ----------------------------------------------------------------- lists --

expect "RPUSH" "3" rpush l a b c
expect "LPUSH" "5" lpush l y z
expect "LRANGE all" $'z\ny\na\nb\nc' lrange l 0 -1
expect "LRANGE middle" $'y\na' lrange l 1 2
expect "LRANGE past the end" $'b\nc' lrange l 3 100
expect "LRANGE start past the end" "" lrange l 10 20
expect "LRANGE wide negative" $'z\ny\na\nb\nc' lrange l -100 100
expect "LPOP" "z" lpop l
expect "RPOP" "c" rpop l
expect "LPOP count" $'y\na' lpop l 2
expect "RPOP last" "b" rpop l
expect "empty list is removed" "0" exists l
expect "LPOP missing" "" lpop l
send rpush wl x
expect_err "GET on a list" "WRONGTYPE" get wl
expect_err "LPUSH on a string" "WRONGTYPE" lpush k1 x
expect "SET replaces a list" "OK" set wl now-a-string
expect "GET after SET on list" "now-a-string" get wl

# The v1 -> v2 fix: LRANGE with a negative start index.
send rpush neg a b c
flush
got=$(cli lrange neg -2 -1)
if [ "$n" -eq 1 ]; then
    [ "$got" == $'a\nb\nc' ] || fail "v1 LRANGE neg -2 -1: expected the v1 bug [a b c], got [${got//$'\n'/ }]"
    ok "LRANGE -2 -1 shows the v1 bug (negative start taken as 0): a b c"
else
    [ "$got" == $'b\nc' ] || fail "LRANGE neg -2 -1: expected [b c], got [${got//$'\n'/ }]"
    ok "LRANGE -2 -1 counts a negative start from the end (fixed in v2): b c"
fi
if [ "$n" -ge 2 ]; then
    expect "LRANGE -1 -1" "c" lrange neg -1 -1
    expect "LRANGE -3 0" "a" lrange neg -3 0
    expect "LRANGE -5 -3" "a" lrange neg -5 -3
fi

# ------------------------------------------------- server / client admin --

expect "CONFIG GET appendonly" $'appendonly\nno' config get appendonly
expect "COMMAND DOCS" "" command docs
expect "COMMAND" "" command
expect "SELECT 0" "OK" select 0
flush
got=$(printf 'CLIENT SETNAME myname\nCLIENT GETNAME\n' | cli)
[ "$got" == $'OK\nmyname' ] || fail "CLIENT SETNAME/GETNAME: [$got]"
ok "CLIENT SETNAME/GETNAME"
expect "CLIENT GETNAME on a new connection" "" client getname
flush
[[ $(info_field kvstore_version) == "v$n" ]] || fail "INFO kvstore_version is not v$n"
ok "INFO kvstore_version:v$n"
[ "$(info_field tcp_port)" == "$port" ] || fail "INFO tcp_port"
ok "INFO tcp_port"
if [ "$n" -ge 7 ]; then
    [ "$(info_field instance)" == "evo" ] || fail "INFO instance is not evo (KVSTORE_INSTANCE, v7)"
    ok "INFO instance:evo (v7)"
else
    [ -z "$(info_field instance)" ] || fail "INFO instance before v7"
    ok "no INFO instance before v7"
fi

# Inline commands, pipelining and requests split across reads.
flush
tcp_open
tcp_send 'PING\r\n'
tcp_expect "inline PING" "+PONG"
tcp_send '*1\r\n$4\r\nPING\r\n'
tcp_expect "RESP array PING" "+PONG"
tcp_send '*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n'
tcp_expect "CONFIG GET save (as redis-benchmark sends it)" '*2' '$4' save '$0' ''
tcp_send 'COMMAND DOCS\r\n'
tcp_expect "COMMAND DOCS is an empty array" '*0'
tcp_send '*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$5\r\nhe'
sleep 0.05
tcp_send 'llo\r\n*2\r\n$3\r\nG'
sleep 0.05
tcp_send 'ET\r\n$5\r\nsplit\r\n'
tcp_expect "request split across reads" "+OK" '$5' "hello"
req=
for i in $(seq 50); do req+="*2\\r\\n\$4\\r\\nINCR\\r\\n\$4\\r\\npipe\\r\\n"; done
req+='PING\r\n'
tcp_send "$req"
want=()
for i in $(seq 50); do want+=(":$i"); done
tcp_expect "51 pipelined requests in one write" "${want[@]}" "+PONG"
tcp_send 'QUIT\r\n'
tcp_expect "QUIT" "+OK"
IFS= read -r -t 5 line <&"$tcp"
[ $? -eq 1 ] || fail "connection not closed after QUIT"
ok "connection closed after QUIT"
tcp_close
tcp_open
tcp_send '*1\r\n$4\r\nPING\r\n*x\r\n'
tcp_expect "protocol error is reported" "+PONG" "-ERR Protocol error: invalid multibulk length"
tcp_close
alive

# --------------------------------------------------- v3: APPEND command --

if [ "$n" -ge 3 ]; then
    expect "APPEND new key" "3" append ap abc
    expect "APPEND" "6" append ap def
    expect "GET after APPEND" "abcdef" get ap
    expect_err "APPEND on a list" "WRONGTYPE" append neg x
    flush
    [ "$(info_field append_calls)" == 3 ] || fail "INFO append_calls: [$(info_field append_calls)]"
    ok "INFO append_calls:3"
else
    expect_err "no APPEND before v3" "ERR unknown command" append ap abc
fi

# ---------------------------------------------------- v4: key expiry --

if [ "$n" -ge 4 ]; then
    send set e1 v
    expect "EXPIRE" "1" expire e1 100
    flush
    got=$(cli ttl e1)
    [ "$got" -ge 99 ] && [ "$got" -le 100 ] || fail "TTL after EXPIRE 100: $got"
    ok "TTL $got"
    got=$(cli pttl e1)
    [ "$got" -gt 98000 ] && [ "$got" -le 100000 ] || fail "PTTL after EXPIRE 100: $got"
    ok "PTTL $got"
    expect "PERSIST" "1" persist e1
    expect "TTL without expiry" "-1" ttl e1
    expect "TTL missing key" "-2" ttl nosuchkey
    expect "EXPIRE missing key" "0" expire nosuchkey 10
    expect "SET clears the TTL: EXPIRE" "1" expire e1 100
    send set e1 w
    expect "SET clears the TTL" "-1" ttl e1
    expect "EXPIRE on a list" "1" expire neg 100
    expect "LRANGE keeps working with a TTL" $'b\nc' lrange neg -2 -1
    send set e2 v
    expect "PEXPIRE" "1" pexpire e2 150
    flush
    gone=
    for _ in $(seq 60); do          # up to 3 s
        [ "$(cli exists e2)" == 0 ] && { gone=1; break; }
        sleep 0.05
    done
    [ -n "$gone" ] || fail "key with PEXPIRE 150 still there after 3 s"
    ok "key expires"
    expect "GET expired key" "" get e2
    expect "EXPIRE 0 deletes" "1" expire e1 0
    expect "key gone after EXPIRE 0" "0" exists e1

    # Lazy expiry only (v4, v5) vs the background sweeper (v6).
    expect "FLUSHALL before sweep test" "OK" flushall
    send set keep v
    send set lazy v
    expect "PEXPIRE 50" "1" pexpire lazy 50
    flush
    if [ "$n" -lt 6 ]; then
        sleep 0.4
        expect "expired but untouched key still counted (no sweeper)" "2" dbsize
        expect "access removes it" "" get lazy
        expect "DBSIZE after lazy expiry" "1" dbsize
    else
        swept=
        for _ in $(seq 60); do      # up to 3 s
            [ "$(cli dbsize)" == 1 ] && { swept=1; break; }
            sleep 0.05
        done
        [ -n "$swept" ] || fail "sweeper did not remove an untouched expired key within 3 s"
        ok "background sweeper removed the untouched expired key"
        expect "key without TTL survives the sweeper" "v" get keep
        flush
        got=$(info_field expired_keys)
        [ "${got:-0}" -ge 1 ] || fail "INFO expired_keys: [$got]"
        ok "INFO expired_keys:$got"
    fi
else
    expect_err "no EXPIRE before v4" "ERR unknown command" expire k1 10
fi

# ------------------------------------- v5: statistics, per-client counter --

if [ "$n" -ge 5 ]; then
    send set hit v
    flush
    h0=$(info_field keyspace_hits)
    m0=$(info_field keyspace_misses)
    [ -n "$h0" ] && [ -n "$m0" ] || fail "INFO lacks keyspace_hits/keyspace_misses"
    send get hit
    send get hit
    send get nosuchkey
    flush
    h1=$(info_field keyspace_hits)
    m1=$(info_field keyspace_misses)
    [ "$h1" -eq $((h0 + 2)) ] && [ "$m1" -eq $((m0 + 1)) ] ||
        fail "keyspace hits/misses $h0/$m0 -> $h1/$m1, expected +2/+1"
    ok "INFO keyspace_hits/keyspace_misses count lookups"
    tcp_open
    tcp_send 'PING\r\nGET hit\r\nCLIENT INFO\r\n'
    tcp_expect "PING, GET" "+PONG" '$1' v
    got=$(tcp_line "CLIENT INFO") && got=$(tcp_line "CLIENT INFO")
    tcp_close
    [[ $got == *" cmds=3" ]] || fail "CLIENT INFO as the 3rd command: [$got]"
    ok "CLIENT INFO counts the connection's commands: $got"
else
    expect_err "no CLIENT INFO before v5" "ERR unknown subcommand" client info
fi

# ----------------------------------------------------------- threads --

flush

names=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | sort | tr '\n' ' ')
[ "$(grep -o 'kv-worker-' <<<"$names" | wc -l)" -eq 4 ] || fail "expected 4 kv-worker threads: $names"
if [ "$n" -ge 6 ]; then
    [[ $names == *kv-sweeper* ]] || fail "no kv-sweeper thread: $names"
else
    [[ $names != *kv-sweeper* ]] || fail "unexpected kv-sweeper thread: $names"
fi
ok "threads: $names"

# --------------------------------------------------------- benchmarks --

tests=ping,set,get,incr,lpush,rpush,lpop,rpop,lrange_100,mset
names_expected=(PING_INLINE PING_MBULK SET GET INCR LPUSH RPUSH LPOP RPOP
                "LPUSH (needed to benchmark LRANGE)" "LRANGE_100 (first 100 elements)"
                "MSET (10 keys)")

# bench DESC ARGS...: one redis-benchmark run; every test must report a rate,
# nothing may be printed on stderr, no error reply may be sent.
bench() {
    local desc=$1 e0 e1 t
    shift
    flush
    e0=$(info_field total_error_replies)
    timeout 60 redis-benchmark -p "$port" -t "$tests" -n 2000 -c 8 -q "$@" \
        >"$work/bench.out" 2>"$work/bench.err" ||
        fail "$desc: redis-benchmark exited with $?: $(cat "$work/bench.err")"
    tr '\r' '\n' <"$work/bench.out" | sed 's/^ *//' | grep 'requests per second' >"$work/bench.rates"
    for t in "${names_expected[@]}"; do
        awk -v t="$t: " 'index($0, t) == 1 { found = 1 } END { exit !found }' "$work/bench.rates" ||
            fail "$desc: no result for $t: $(cat "$work/bench.out")"
    done
    [ ! -s "$work/bench.err" ] || fail "$desc: redis-benchmark stderr: $(cat "$work/bench.err")"
    e1=$(info_field total_error_replies)
    [ "$e1" == "$e0" ] || fail "$desc: the server sent $((e1 - e0)) error replies"
    alive
    ok "$desc: $(wc -l <"$work/bench.rates") tests, no errors"
    sed 's/^/         /' "$work/bench.rates"
}

expect "FLUSHALL before benchmarks" "OK" flushall
bench "redis-benchmark -n 2000 -c 8"
expect "no INCR lost under 8 clients" "2000" get "counter:__rand_int__"
flush
[ "$(cli lrange mylist 0 -1 | wc -l)" -eq 2000 ] || fail "mylist should hold 2000 elements"
ok "list length after push/pop benchmarks"
bench "redis-benchmark -n 2000 -c 8 -P 16" -P 16
expect "no INCR lost with pipelining" "4000" get "counter:__rand_int__"
flush
[ "$(cli lrange mylist 0 -1 | wc -l)" -eq 4000 ] || fail "mylist should hold 4000 elements"
ok "list length after pipelined benchmarks"
expect "DBSIZE after benchmarks" "3" dbsize

# Replies far above the 1 MB output soft limit: 50 pipelined LRANGEs of
# 4000 elements (~2.5 MB), and clients that hang up with output pending.
flush
timeout 60 redis-benchmark -p "$port" -n 200 -c 2 -P 50 -q lrange mylist 0 -1 \
    >"$work/bench.out" 2>"$work/bench.err" || fail "pipelined big LRANGE: redis-benchmark failed"
tr '\r' '\n' <"$work/bench.out" | grep -q 'requests per second' || fail "pipelined big LRANGE: no result"
[ ! -s "$work/bench.err" ] || fail "pipelined big LRANGE: $(cat "$work/bench.err")"
ok "pipelined replies above the output soft limit"
req=
for i in $(seq 100); do req+='*4\r\n$6\r\nLRANGE\r\n$6\r\nmylist\r\n$1\r\n0\r\n$2\r\n-1\r\n'; done
for i in 1 2 3; do
    tcp_open
    tcp_send "$req"
    tcp_close
done
alive
expect "server still serving after clients hung up with output pending" "PONG" ping

flush
for _ in $(seq 40); do              # closes may still be in flight: up to 2 s
    clients=$(info_field connected_clients)
    [ "$clients" -le 1 ] && break
    sleep 0.05
done
[ "$clients" -le 1 ] || fail "connections leaked: connected_clients=$clients"
ok "no connection leaked"
alive
[ ! -s "$work/stderr" ] || fail "server wrote to stderr: $(cat "$work/stderr")"
echo "PASS kvstore v$n"
