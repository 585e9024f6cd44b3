#!/usr/bin/env bash
# Functional and short load test of one httpd version.
#
#   examples/httpd/test.sh VERSION_DIR [PORT]
#
# Starts VERSION_DIR/httpd (build it first) on PORT (default: a free port
# chosen by the kernel, read back from the ready line) with a temporary www
# root, checks static files, errors, keep-alive, pipelining, the JSON API and
# the behaviour each version adds, runs wrk against a file and an API URL
# until it has served WRK_REQUESTS requests to each (default 5000), then stops
# the server by its PID.  Exits non-zero on any failure.
#
# Nothing waits for a fixed time where a condition can be waited for.  The one
# check that is about time itself (an idle keep-alive connection stays open
# past the idle timeout before v6, is closed by the reaper in v6) opens its
# connection at start-up and reads it at the end, so that the idle time
# overlaps the other checks; it waits only for what is left of it.
set -u

usage() { echo "usage: $0 VERSION_DIR [PORT]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
[ -d "$1" ] || { echo "test.sh: no such directory: $1" >&2; exit 2; }
VDIR=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
V=$(basename "$VDIR")
N=${V#v}
case "$N" in ''|*[!0-9]*) echo "test.sh: $V is not a version directory (vN)" >&2; exit 2 ;; esac
PORT=${2:-0}
BIN=$VDIR/httpd
[ -x "$BIN" ] || { echo "test.sh: $BIN is not built (run make -C $VDIR)" >&2; exit 2; }
for tool in curl wrk timeout; do
    command -v $tool >/dev/null || { echo "test.sh: $tool is not installed" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/httpd-test.XXXXXX")
WWW=$TMP/www
PID=
FAILS=0
CHECKS=0

cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

ok()  { CHECKS=$((CHECKS + 1)); }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL [$V] $*" >&2; }
# expect NAME ACTUAL WANTED
expect() { if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi; }
# expect_has NAME FILE STRING: FILE contains STRING
expect_has() { if grep -qF -- "$3" "$2"; then ok; else bad "$1: no '$3' in: $(head -c 400 "$2")"; fi; }
expect_lacks() { if grep -qF -- "$3" "$2"; then bad "$1: unexpected '$3' in: $(head -c 400 "$2")"; else ok; fi; }

# ---- the document root ---------------------------------------------------
mkdir -p "$WWW/sub" "$WWW/dir.d"
printf '<!doctype html>\n<title>graft httpd</title>\n<p>index</p>\n' >"$WWW/index.html"
printf 'body { color: #123; }\n' >"$WWW/style.css"
printf '.a{b:c}\n' >"$WWW/app.min.css"
printf 'console.log("hi");\n' >"$WWW/script.js"
printf '{"ok":true}\n' >"$WWW/data.json"
printf '\211PNG\r\n\032\n0000' >"$WWW/logo.png"
printf 'plain text\n' >"$WWW/notes.txt"
printf 'no extension\n' >"$WWW/README"
printf 'with a space\n' >"$WWW/hello world.txt"
printf 'text in a dotted dir\n' >"$WWW/dir.d/page.txt"
printf '<p>sub index</p>\n' >"$WWW/sub/index.html"
head -c 300000 /dev/urandom >"$WWW/big.bin"
head -c 100000 /dev/urandom >"$TMP/upload.bin"
printf 'TOP SECRET\n' >"$TMP/secret.txt"

# ---- start ----------------------------------------------------------------
HTTPD_IDLE_TIMEOUT=1 HTTPD_EXTRA_HEADER="X-Graft-Extra: on" "$BIN" --root "$WWW" --port "$PORT" >"$TMP/stdout" 2>"$TMP/stderr" &
PID=$!
READY=
for _ in $(seq 100); do          # up to 10 s
    READY=$(grep -m1 ' ready on port ' "$TMP/stdout" 2>/dev/null)
    [ -n "$READY" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$READY" ]; then
    echo "FAIL [$V] server did not print its ready line within 10 s" >&2
    echo "--- stdout:" >&2; cat "$TMP/stdout" >&2
    echo "--- stderr:" >&2; cat "$TMP/stderr" >&2
    exit 1
fi
PORT=$(echo "$READY" | sed -n 's/^httpd v[0-9][0-9]* ready on port \([0-9][0-9]*\)$/\1/p')
expect "ready line" "$(echo "$READY" | sed 's/ port [0-9]*$/ port P/')" "httpd $V ready on port P"
[ -n "$PORT" ] || { echo "FAIL [$V] cannot read the port from: $READY" >&2; exit 1; }
BASE=http://127.0.0.1:$PORT
WRK_REQUESTS=${WRK_REQUESTS:-5000}

# The idle keep-alive connection (see v6 below): opened now, never written to.
exec {IDLE}<>"/dev/tcp/127.0.0.1/$PORT" || { echo "FAIL [$V] cannot connect to port $PORT" >&2; exit 1; }
IDLE_SINCE=$EPOCHREALTIME
# idle_left S: seconds (3 decimals) until the idle connection has been idle S
# seconds, at least 0.1
idle_left() {
    awk -v s="$1" -v t0="$IDLE_SINCE" -v t1="$EPOCHREALTIME" \
        'BEGIN { l = s - (t1 - t0); printf "%.3f\n", l < 0.1 ? 0.1 : l }'
}

# req [curl args...]: one request; sets CODE, CTYPE; body in $TMP/body, head in $TMP/head
req() {
    CODE=$(curl -s --max-time 5 -o "$TMP/body" -D "$TMP/head" -w '%{http_code}' "$@")
    CTYPE=$(sed -n 's/^[Cc]ontent-[Tt]ype: *\([^\r]*\)\r*$/\1/p' "$TMP/head" | head -1)
}
# header NAME: value of response header NAME from the last req
header() { sed -n "s/^$1: *\([^\r]*\)\r*\$/\1/Ip" "$TMP/head" | head -1; }
# raw DATA: send DATA (printf %b escapes) on a fresh connection, print all the
# server sends until it closes (5 s at most)
raw() {
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    printf '%b' "$1" >&3
    timeout 5 cat <&3
    exec 3<&- 3>&-
}

# ---- static files ----------------------------------------------------------
req "$BASE/"
expect "GET / status" "$CODE" 200
expect "GET / type" "$CTYPE" "text/html; charset=utf-8"
if cmp -s "$TMP/body" "$WWW/index.html"; then ok; else bad "GET / body differs from index.html"; fi
expect "Server header" "$(header Server)" "graft-httpd/$V"

for pair in style.css:text/css script.js:text/javascript data.json:application/json \
            logo.png:image/png notes.txt:text/plain README:application/octet-stream \
            dir.d/page.txt:text/plain "hello%20world.txt:text/plain"; do
    path=${pair%%:*} want=${pair#*:}
    req "$BASE/$path"
    expect "GET /$path status" "$CODE" 200
    expect "GET /$path type" "${CTYPE%%;*}" "$want"
done
req "$BASE/sub/"
expect "GET /sub/ status" "$CODE" 200
expect_has "GET /sub/ body" "$TMP/body" "sub index"
req "$BASE/sub"
expect "GET /sub status" "$CODE" 301
expect "GET /sub Location" "$(header Location)" "/sub/"

# The v1 -> v2 fix: the type of a multi-dot name comes from its last dot.
req "$BASE/app.min.css"
expect "GET /app.min.css status" "$CODE" 200
if [ "$N" -ge 2 ]; then
    expect "GET /app.min.css type (fixed in v2)" "${CTYPE%%;*}" "text/css"
else
    expect "GET /app.min.css type (v1 bug)" "${CTYPE%%;*}" "application/octet-stream"
fi

req "$BASE/big.bin"
expect "GET /big.bin status" "$CODE" 200
if cmp -s "$TMP/body" "$WWW/big.bin"; then ok; else bad "GET /big.bin body differs"; fi
req -I "$BASE/big.bin"
expect "HEAD /big.bin status" "$CODE" 200
expect "HEAD /big.bin Content-Length" "$(header Content-Length)" 300000
raw 'HEAD /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$TMP/raw"
expect "HEAD /big.bin sends no body" "$(sed -n '/^\r$/,$p' "$TMP/raw" | wc -c)" 2

req "$BASE/missing.html"
expect "GET /missing.html status" "$CODE" 404
req -X POST -d x "$BASE/index.html"
expect "POST /index.html status" "$CODE" 405

# ---- refused escapes and malformed requests --------------------------------
for p in /../secret.txt /sub/../../secret.txt /%2e%2e/secret.txt /sub/%2E%2E/%2e%2e/secret.txt; do
    req --path-as-is "$BASE$p"
    expect "GET $p status" "$CODE" 403
    expect_lacks "GET $p body" "$TMP/body" "TOP SECRET"
done
raw 'GARBAGE\r\n\r\n' >"$TMP/raw"
expect_has "garbage request" "$TMP/raw" "HTTP/1.1 400 "
raw 'GET / HTTP/9.9\r\nHost: x\r\n\r\n' >"$TMP/raw"
expect_has "bad version" "$TMP/raw" "HTTP/1.1 400 "
raw 'GET index.html HTTP/1.1\r\nHost: x\r\n\r\n' >"$TMP/raw"
expect_has "relative target" "$TMP/raw" "HTTP/1.1 400 "
raw 'GET / HTTP/1.1\r\nHost x\r\n\r\n' >"$TMP/raw"
expect_has "header without colon" "$TMP/raw" "HTTP/1.1 400 "
raw 'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n' >"$TMP/raw"
expect_has "bad percent escape" "$TMP/raw" "HTTP/1.1 400 "
raw 'PUT /api/kv/x HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\n\r\n' >"$TMP/raw"
expect_has "bad Content-Length" "$TMP/raw" "HTTP/1.1 400 "

# ---- connections -------------------------------------------------------------
curl -sv --max-time 5 -o /dev/null -o /dev/null "$BASE/index.html" "$BASE/api/stats" 2>"$TMP/verbose"
expect "keep-alive: connections opened" "$(grep -c '^\* Connected to' "$TMP/verbose")" 1
expect_has "keep-alive: second request reuses the connection" "$TMP/verbose" "Re-using existing connection"
raw 'GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /api/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$TMP/raw"
expect "pipelined: responses" "$(grep -c '^HTTP/1.1 200 OK' "$TMP/raw")" 3
expect_has "pipelined: second body" "$TMP/raw" "plain text"
raw 'GET /notes.txt HTTP/1.0\r\n\r\n' >"$TMP/raw"   # closed after the response
expect_has "HTTP/1.0 without keep-alive" "$TMP/raw" "Connection: close"

# ---- JSON API ------------------------------------------------------------------
req "$BASE/api/counters/hits"
expect "missing counter status" "$CODE" 404
req -X POST "$BASE/api/counters/hits/incr"
expect "incr status" "$CODE" 200
expect "incr type" "$CTYPE" application/json
expect "incr body" "$(cat "$TMP/body")" '{"name":"hits","value":1}'
req -X POST "$BASE/api/counters/hits/incr"
req -X POST -d 40 "$BASE/api/counters/hits/incr"
expect "incr by 40" "$(cat "$TMP/body")" '{"name":"hits","value":42}'
req "$BASE/api/counters/hits"
expect "counter read back" "$(cat "$TMP/body")" '{"name":"hits","value":42}'
req -X POST -d abc "$BASE/api/counters/hits/incr"
expect "incr by non-number" "$CODE" 400
req -X POST "$BASE/api/counters/hits"
expect "POST on a counter" "$CODE" 405

req -X PUT --data-binary 'hello' "$BASE/api/kv/greeting"
expect "kv create" "$CODE" 201
req -X PUT --data-binary 'hello, world' "$BASE/api/kv/greeting"
expect "kv replace" "$CODE" 200
req "$BASE/api/kv/greeting"
expect "kv get status" "$CODE" 200
expect "kv get body" "$(cat "$TMP/body")" 'hello, world'
expect "kv get type" "$CTYPE" application/octet-stream
req -T "$TMP/upload.bin" "$BASE/api/kv/blob"   # curl sends Expect: 100-continue
expect "kv put 100 KB" "$CODE" 201
req "$BASE/api/kv/blob"
if cmp -s "$TMP/body" "$TMP/upload.bin"; then ok; else bad "kv 100 KB value differs"; fi
req -X DELETE "$BASE/api/kv/blob"
expect "kv delete" "$CODE" 200
req "$BASE/api/kv/blob"
expect "kv get deleted" "$CODE" 404
req -X DELETE "$BASE/api/kv/blob"
expect "kv delete again" "$CODE" 404
req "$BASE/api/kv/bad%20key"
expect "kv invalid key" "$CODE" 400
req -X PATCH "$BASE/api/kv/greeting"
expect "kv PATCH" "$CODE" 405
req "$BASE/api/nothing"
expect "unknown endpoint" "$CODE" 404
req "$BASE/api/stats"
expect "stats status" "$CODE" 200
expect_has "stats version" "$TMP/body" "\"version\":\"$V\""
expect_has "stats keys" "$TMP/body" '"keys":1'

# ---- what each version adds ------------------------------------------------------
# v3: GET /api/kv lists the keys, POST /api/counters/NAME/decr
req -X POST "$BASE/api/counters/hits/decr"
req2_code=$CODE req2_body=$(cat "$TMP/body")
req "$BASE/api/kv"
if [ "$N" -ge 3 ]; then
    expect "decr (v3)" "$req2_body" '{"name":"hits","value":41}'
    expect "kv list status (v3)" "$CODE" 200
    expect_has "kv list keys (v3)" "$TMP/body" '"keys":["greeting"]'
    expect_has "kv list version (v3)" "$TMP/body" '"version":'
else
    expect "decr (before v3)" "$req2_code" 404
    expect "kv list (before v3)" "$CODE" 404
fi

# v4: kv entries carry Last-Modified; counters are 64-bit
req "$BASE/api/kv/greeting"
if [ "$N" -ge 4 ]; then
    lm=$(header Last-Modified)
    case "$lm" in *", "*" GMT") ok ;; *) bad "kv Last-Modified (v4): got '$lm'" ;; esac
else
    expect "kv Last-Modified (before v4)" "$(header Last-Modified)" ""
fi
req -X POST -d 2000000000 "$BASE/api/counters/big/incr"
req -X POST -d 2000000000 "$BASE/api/counters/big/incr"
if [ "$N" -ge 4 ]; then
    expect "counter past 2^31 (v4)" "$(cat "$TMP/body")" '{"name":"big","value":4000000000}'
else
    expect "counter past 2^31 (before v4)" "$CODE" 409
fi

# v5: per-connection request number; statistics by status class
curl -sv --max-time 5 -o /dev/null -o /dev/null "$BASE/notes.txt" "$BASE/notes.txt" 2>"$TMP/verbose"
tr -d '\r' <"$TMP/verbose" | sed -n 's/^< X-Conn-Requests: //p' | tr '\n' ' ' >"$TMP/nreq"
req "$BASE/api/stats"
if [ "$N" -ge 5 ]; then
    expect "X-Conn-Requests (v5)" "$(cat "$TMP/nreq")" "1 2 "
    expect_has "stats responses (v5)" "$TMP/body" '"responses":{"1xx":'
    expect_has "stats keepalive_reuses (v5)" "$TMP/body" '"keepalive_reuses":'
else
    expect "X-Conn-Requests (before v5)" "$(cat "$TMP/nreq")" ""
fi

# v7: the extra header from HTTPD_EXTRA_HEADER (above) on every response
req "$BASE/notes.txt"
if [ "$N" -ge 7 ]; then
    expect "X-Graft-Extra (v7)" "$(header X-Graft-Extra)" "on"
else
    expect "X-Graft-Extra (before v7)" "$(header X-Graft-Extra)" ""
fi

# ---- load ------------------------------------------------------------------------
# wrk stops once it has served WRK_REQUESTS requests (examples/httpd/wrk-count.lua),
# 30 s at most; every one of them must be a 2xx, with no socket error.
# wrk_count URL: wrk -t2 -c16 on URL until WRK_REQUESTS responses, its exit status
wrk_count() {
    local wpid rc
    rm -f "$TMP"/done.*
    wrk -t2 -c16 -d30s -s "$HERE/wrk-count.lua" "$1" -- "$WRK_REQUESTS" 2 "$TMP" >"$TMP/wrk" 2>&1 &
    wpid=$!
    while kill -0 "$wpid" 2>/dev/null; do
        [ -e "$TMP/done.1" ] && [ -e "$TMP/done.2" ] && kill -INT "$wpid" 2>/dev/null
        sleep 0.02
    done
    wait "$wpid"
}
for url in "$BASE/index.html" "$BASE/api/counters/hits"; do
    if ! wrk_count "$url"; then
        bad "wrk $url failed: $(cat "$TMP/wrk")"
        continue
    fi
    total=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$TMP/wrk")
    if [ -n "$total" ] && [ "$total" -ge "$WRK_REQUESTS" ]; then ok
    else bad "wrk $url: fewer than $WRK_REQUESTS requests: $(cat "$TMP/wrk")"; fi
    expect_lacks "wrk $url socket errors" "$TMP/wrk" "Socket errors"
    expect_lacks "wrk $url non-2xx" "$TMP/wrk" "Non-2xx"
    echo "[$V] wrk $url: $(grep -E 'Requests/sec' "$TMP/wrk" | tr -s ' ') ($total requests)"
done
req "$BASE/api/counters/hits"
expect "counter after load" "$CODE" 200

# v6: idle connections are closed by the reaper (HTTPD_IDLE_TIMEOUT=1 above);
# before v6 the connection opened at start-up is still open after 2 s idle.
if [ "$N" -ge 6 ]; then
    if timeout "$(idle_left 5)" cat <&"$IDLE" >/dev/null; then ok; else bad "idle connection not closed within 5 s (v6)"; fi
else
    timeout "$(idle_left 2)" cat <&"$IDLE" >/dev/null
    expect "idle connection kept open 2 s (before v6)" "$?" 124
fi
exec {IDLE}<&-

# ---- stop ------------------------------------------------------------------------
kill -TERM "$PID"
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then
    bad "server still running 5 s after SIGTERM"
else
    wait "$PID"
    expect "exit status after SIGTERM" "$?" 0
    PID=
fi

expect_lacks "server stderr (sanitizers)" "$TMP/stderr" "Sanitizer"
expect_lacks "server stderr (sanitizers)" "$TMP/stderr" "runtime error"

if [ "$FAILS" -ne 0 ]; then
    echo "--- server stderr:" >&2; tail -20 "$TMP/stderr" >&2
    echo "FAILED [$V]: $FAILS of $CHECKS checks" >&2
    exit 1
fi
echo "PASS [$V]: $CHECKS checks"
