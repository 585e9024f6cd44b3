#!/usr/bin/env bash
# graft trial: what to run before trusting graft with a release of a real
# server. Builds two source trees with graft-cc, makes the patch, starts the
# old version, puts it under its own clients' load, applies the patch in the
# middle of the load, checks that it kept serving and runs the new code,
# reverts, checks again, and prints one table row (docs/REAL_WORLD.md is made
# of them). Run it with --help.
set -u -o pipefail

usage() {
    cat <<'EOF'
usage: scripts/trial.sh --old DIR --new DIR --build CMD --binary PATH --run CMD
                        --ready CMD --load CMD --serving CMD [options]

Builds OLD and NEW with graft-cc, diffs them (graft diff --explain), starts
the old binary, starts the load, applies the patch while the load runs,
checks that the server kept serving and that the new code is live, reverts
(when graft refuses the revert: makes the patch from NEW back to OLD and
applies that, the way out graft names), checks again, stops everything it
started (by PID, also on ^C and on failure) and prints one table row:

  | pair | build | patch | apply pause | failed during load | revert |

Required:
  --old DIR          the old version's source tree (built in place)
  --new DIR          the new version's source tree (built in place)
  --build CMD        build command, run in each tree by bash with CC=graft-cc,
                     CXX=graft-c++ (or graft-gcc, graft-g++: --compiler gcc)
                     (and graft's bin/ first in PATH), under
                     nice -n 5; e.g. 'make -j2' or './configure && make -j2'
  --binary PATH      the built program, relative to each tree (e.g. src/nginx)
  --module PATH      a shared library the server loads (a plugin, a dynamic
                     module), relative to each tree, built with graft-cc
                     -shared: the patch is made for it instead of the binary
                     and applied to the server, which must have it loaded;
                     {module} in commands is the old tree's copy
  --run CMD          starts the server in the foreground; {bin} is replaced by
                     the binary's absolute path, {port} by a free TCP port,
                     {dir} by the trial's work directory. bash execs it, so
                     its PID is the process graft patches (no daemon mode)
  --ready CMD        succeeds once the server accepts requests (retried for
                     --ready-timeout seconds)
  --load CMD         the clients' load (wrk, ab, mosquitto_pub, a script ...),
                     running for at least --apply-after + a few seconds. Its
                     failures are counted from its output: wrk (socket errors
                     and non-2xx/3xx), ab (failed and non-2xx), or a last line
                     'requests=N failed=M'; with none of those, --failures
  --serving CMD      succeeds while the server serves; also run every 0.2 s
                     during the load as a probe, whose failures are counted

Options:
  --name NAME        the pair's name in the row (default: OLD -> NEW dir names)
  --setup CMD        run once in the work directory before anything starts (a
                     configuration file that names {port}, ...)
  --upstream CMD     a helper the server needs (the origin server behind a
                     proxy, ...), started before it in the foreground with
                     {upstream_port} (and $UPSTREAM_PORT) a second free port;
                     it must be ready within --ready-timeout ({upstream_port}
                     accepts connections); stopped by PID at the end
  --check-old CMD    succeeds only on the old code (checked before the apply
                     and after the revert)
  --check-new CMD    succeeds only on the new code (checked after the apply)
  --failures CMD     prints the number of failed requests, read from the
                     load's output in the file $LOAD_OUT
  --diff-arg ARG     passed to graft diff (repeatable), e.g.
                     --diff-arg=--accept-static-value --diff-arg=NAME
  --transform FILE   update-time code / transformers (graft diff --transform)
  --back-transform FILE
                     the same for the NEW->OLD patch the trial makes when the
                     revert is refused (directives such as GRAFT_RETYPES speak
                     of both builds; transformers of one direction)
  --apply-after S    seconds of load before the apply (default 2)
  --revert-after S   seconds of load between the apply and the revert (default 2)
  --load-wait S      seconds to wait for the load to end after the revert
                     before it is stopped with SIGINT (default 30)
  --ready-timeout S  (default 30)
  --timeout MS       graft apply / revert --timeout (default graft's)
  --no-build         use the binaries already built (the store in --work must
                     hold their build records)
  --graft DIR        graft's build directory with bin/graft, bin/graft-cc
                     (default: build/ of the checkout this script is in)
  --compiler gcc     build with graft-gcc and graft-g++ (Debian's gcc 12)
                     instead of graft-cc and graft-c++ (clang 14, the default)
  --work DIR         logs, the patch, the build store (GRAFT_STORE) and a
                     www/index.html for static servers (default: ./trial-NAME)

Every command runs in bash in the work directory, with PORT, UPSTREAM_PORT,
BIN (the binary running), TRIAL_DIR and SERVER_PID in its environment.
Exit status: 0 if the patch applied and reverted and every check passed;
1 otherwise, a refusal included (the row and the line under it say what);
2 for bad input.

Example (darkhttpd 1.15 -> 1.16, under wrk):
  scripts/trial.sh --old darkhttpd-v1.15 --new darkhttpd-v1.16 \
    --build 'make darkhttpd' --binary darkhttpd \
    --run '{bin} {dir}/www --addr 127.0.0.1 --port {port}' \
    --ready 'curl -sf http://127.0.0.1:$PORT/ -o /dev/null' \
    --load 'wrk -t2 -c16 -d10s http://127.0.0.1:$PORT/index.html' \
    --serving 'curl -sf http://127.0.0.1:$PORT/index.html -o /dev/null'
EOF
}

die() { echo "trial: $*" >&2; exit 2; }

old= new= build_cmd= binary= module= run_cmd= ready_cmd= load_cmd= serving_cmd=
name= setup_cmd= upstream_cmd= check_old= check_new= failures_cmd= transform= back_transform= work= graft_build= compiler=clang
apply_after=2 revert_after=2 load_wait=30 ready_timeout=30 timeout_ms= no_build=0
diff_args=()

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
    opt=$1 val=
    if [[ $opt == --*=* ]]; then val=${opt#*=} opt=${opt%%=*}; set -- "$opt" "$val" "${@:2}"; fi
    case $opt in
        -h|--help) usage; exit 0 ;;
        --no-build) no_build=1; shift; continue ;;
        --old|--new|--build|--binary|--module|--run|--ready|--load|--serving|--name|--check-old|--check-new|--failures|\
        --setup|--upstream|--diff-arg|--transform|--back-transform|--apply-after|--revert-after|--load-wait|--ready-timeout|--timeout|--graft|--work|\
        --compiler)
            need_value "$@" ;;
        *) die "unknown option '$opt' (see --help)" ;;
    esac
    case $opt in
        --old) old=$2 ;; --new) new=$2 ;; --build) build_cmd=$2 ;; --binary) binary=$2 ;; --module) module=$2 ;;
        --run) run_cmd=$2 ;; --ready) ready_cmd=$2 ;; --load) load_cmd=$2 ;; --serving) serving_cmd=$2 ;;
        --name) name=$2 ;; --upstream) upstream_cmd=$2 ;; --setup) setup_cmd=$2 ;; --check-old) check_old=$2 ;; --check-new) check_new=$2 ;;
        --failures) failures_cmd=$2 ;; --diff-arg) diff_args+=("$2") ;; --transform) transform=$2 ;; --back-transform) back_transform=$2 ;;
        --apply-after) apply_after=$2 ;; --revert-after) revert_after=$2 ;; --load-wait) load_wait=$2 ;;
        --ready-timeout) ready_timeout=$2 ;; --timeout) timeout_ms=$2 ;; --graft) graft_build=$2 ;;
        --work) work=$2 ;; --compiler) compiler=$2 ;;
    esac
    shift 2
done

for given in "old=$old" "new=$new" "build=$build_cmd" "binary=$binary" "run=$run_cmd" "ready=$ready_cmd" \
             "load=$load_cmd" "serving=$serving_cmd"; do
    [ -n "${given#*=}" ] || die "--${given%%=*} is missing (see --help)"
done
for n in apply_after revert_after load_wait ready_timeout; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "--${n//_/-} must be a whole number of seconds, not '${!n}'"
done
[ -z "$timeout_ms" ] || [[ $timeout_ms =~ ^[0-9]+$ ]] || die "--timeout must be milliseconds, not '$timeout_ms'"
[ -d "$old" ] || die "--old $old is not a directory"
[ -d "$new" ] || die "--new $new is not a directory"
old=$(cd "$old" && pwd) new=$(cd "$new" && pwd)
[ "$old" != "$new" ] || die "--old and --new are the same tree; give two trees (two checkouts or unpacked releases)"
[[ $binary != /* ]] || die "--binary is relative to each tree (e.g. src/server), not '$binary'"
[[ $module != /* ]] || die "--module is relative to each tree (e.g. plugins/foo/foo.so), not '$module'"
patched=${module:-$binary}  # what the patch is made for
if [ -n "$transform" ]; then
    [ -f "$transform" ] || die "--transform $transform is not a file"
    transform=$(cd "$(dirname "$transform")" && pwd)/$(basename "$transform")
fi
if [ -n "$back_transform" ]; then
    [ -f "$back_transform" ] || die "--back-transform $back_transform is not a file"
    back_transform=$(cd "$(dirname "$back_transform")" && pwd)/$(basename "$back_transform")
fi
graft_build=${graft_build:-$(dirname "$0")/../build}
graft_build=$(cd "$graft_build" 2>/dev/null && pwd) || die "no graft build directory $graft_build (give --graft DIR)"
graft=$graft_build/bin/graft
case $compiler in
    clang) cc=graft-cc cxx=graft-c++ ;;
    gcc) cc=graft-gcc cxx=graft-g++ ;;
    *) die "--compiler is clang or gcc, not '$compiler'" ;;
esac
for tool in graft $cc $cxx; do
    [ -x "$graft_build/bin/$tool" ] || die "$graft_build/bin/$tool is missing (build graft first, or give --graft DIR)"
done
for tool in timeout setsid python3; do command -v "$tool" >/dev/null || die "$tool not found"; done
name=${name:-"$(basename "$old") -> $(basename "$new")"}
work=${work:-./trial-$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_')}
mkdir -p "$work" || die "cannot create the work directory $work"
work=$(cd "$work" && pwd)
export GRAFT_STORE=$work/store TRIAL_DIR=$work
rm -f "$work/pids"
mkdir -p "$GRAFT_STORE" && chmod 700 "$GRAFT_STORE"

# ------------------------------------------------------- processes by PID --

server_pid= load_pid= probe_pid= upstream_pid= sleep_pid=
# stop PID: the process group it leads (setsid made it), TERM then KILL.
stop() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
cleanup() { stop "$sleep_pid"; stop "$probe_pid"; stop "$load_pid"; stop "$server_pid"; stop "$upstream_pid"; }
# started NAME PID: kept in $work/pids too, so that what a run started can be checked from outside.
started() { echo "$1 $2" >>"$work/pids"; }
# pause_for SECONDS: a sleep that a signal to this script interrupts (bash runs a trap only between commands).
pause_for() { sleep "$1" & sleep_pid=$!; wait "$sleep_pid"; sleep_pid=; }
trap cleanup EXIT
trap 'echo "trial: interrupted; stopping what it started" >&2; exit 130' INT TERM

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
json_field() { grep -o "\"$1\": *[^,}]*" "$2" | head -1 | sed 's/^[^:]*: *//; s/^"//; s/"$//'; }
first_line() { grep -v '^\s*$' "$1" 2>/dev/null | grep -m1 -i 'error\|refus' || grep -m1 -v '^\s*$' "$1" 2>/dev/null; }
# expand CMD: {bin}, {port}, {dir} replaced.
expand() {
    local c=$1
    c=${c//\{bin\}/$(printf '%q' "$BIN")}
    c=${c//\{module\}/$(printf '%q' "$MODULE")}
    c=${c//\{port\}/$PORT}
    c=${c//\{upstream_port\}/$UPSTREAM_PORT}
    c=${c//\{dir\}/$(printf '%q' "$work")}
    printf '%s' "$c"
}
# check CMD LOG: runs CMD (bounded), 0 if it succeeds.
check() { (cd "$work" && timeout 20 bash -c "$(expand "$1")") >>"$work/$2" 2>&1; }
server_alive() { [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; }

# --------------------------------------------------------------- the row --

build_ok=- patch=- pause=- failed=- revert=- refusal= problems=()
row() {
    echo
    echo "| pair | build | patch (functions / data / transformers) | apply pause | failed during load | revert |"
    echo "|---|---|---|---|---|---|"
    echo "| $name | $build_ok | $patch | $pause | $failed | $revert |"
    [ -z "$refusal" ] || echo "refused: $refusal"
    [ ${#problems[@]} -eq 0 ] || printf 'problem: %s\n' "${problems[@]}"
    echo "(logs, patch and explain output in $work)"
}
finish() {
    cleanup
    row
    [ -z "$refusal" ] && [ ${#problems[@]} -eq 0 ] && exit 0
    exit 1
}

# ----------------------------------------------------------------- build --

build_tree() {  # build_tree DIR LABEL
    local log=$work/build-$2.log
    if [ $no_build = 0 ]; then
        echo "trial: building $2 ($1): $build_cmd" >&2
        (cd "$1" && CC=$graft_build/bin/$cc CXX=$graft_build/bin/$cxx PATH=$graft_build/bin:$PATH \
            nice -n 5 bash -c "$build_cmd") >"$log" 2>&1 ||
            { build_ok="$2 failed"; problems+=("building $2 failed: $(tail -1 "$log") (see $log)"); finish; }
    fi
    [ -x "$1/$binary" ] || { build_ok="$2: no $binary"; problems+=("$1/$binary was not built"); finish; }
    [ -z "$module" ] || [ -f "$1/$module" ] || { build_ok="$2: no $module"; problems+=("$1/$module was not built"); finish; }
}
t0=$(now_ms)
build_tree "$old" old
build_tree "$new" new
build_ok="ok ($(( ($(now_ms) - t0) / 1000 )) s)"
[ $no_build = 1 ] && build_ok="ok (prebuilt)"

# ------------------------------------------------------------------ diff --

echo "trial: graft diff --explain" >&2
diff_cmd=("$graft" diff "$old/$patched" "$new/$patched" -o "$work/patch.graft" --explain "${diff_args[@]}")
[ -z "$transform" ] || diff_cmd+=(--transform "$transform")
rm -f "$work/patch.graft"
"${diff_cmd[@]}" >"$work/explain.txt" 2>"$work/diff.err"
if [ $? -ne 0 ] || [ ! -s "$work/patch.graft" ]; then
    patch="refused by graft diff"
    refusal=$(first_line "$work/diff.err")
    # A tree built before under another store (another --work): make had nothing to do, so this store lacks its record.
    [[ $refusal != *"no graft build record"* ]] ||
        refusal+=" -- the tree was built before with another GRAFT_STORE: give that trial's --work, or clean the tree"
    finish
fi
replaced=$(grep -c '^  replace ' "$work/explain.txt")
globals=$(grep -c '^  add .* new global' "$work/explain.txt")
added=$(( $(grep -c '^  add ' "$work/explain.txt") - globals ))
types=$(sed -n 's/^data: \([0-9]*\) type.*/\1/p' "$work/explain.txt")
types=${types:-0}
users=$(grep -c 'transformer: the user' "$work/explain.txt")
inits=$(sed -n '/^update-time code/,/^[^ ]/p' "$work/explain.txt" | grep -Ec '^  (init|rerun|run|commit) ')
patch="$replaced replaced + $added added / $globals new globals, $types types changed / $((types - users)) generated"
[ "$users" -eq 0 ] || patch+=", $users yours"
[ "$inits" -eq 0 ] || patch+=", $inits update-time"

# ----------------------------------------------------------------- start --

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
UPSTREAM_PORT=$(free_port)
[ "$UPSTREAM_PORT" != "$PORT" ] || UPSTREAM_PORT=$(free_port)
BIN=$old/$binary
MODULE=${module:+$old/$module}
export PORT UPSTREAM_PORT BIN MODULE
mkdir -p "$work/www"
[ -e "$work/www/index.html" ] || printf '<html><body>graft trial</body></html>\n' >"$work/www/index.html"
if [ -n "$setup_cmd" ]; then
    check "$setup_cmd" setup.log || { problems+=("--setup failed: $(tail -1 "$work/setup.log")"); finish; }
fi
if [ -n "$upstream_cmd" ]; then
    echo "trial: starting the upstream: $(expand "$upstream_cmd")" >&2
    (cd "$work" && exec setsid bash -c "exec $(expand "$upstream_cmd")") >"$work/upstream.out" 2>"$work/upstream.err" &
    upstream_pid=$!
    started upstream "$upstream_pid"
    deadline=$(( $(now_ms) + ready_timeout * 1000 ))
    until (exec 3<>"/dev/tcp/127.0.0.1/$UPSTREAM_PORT") 2>/dev/null; do
        kill -0 "$upstream_pid" 2>/dev/null || { problems+=("the upstream exited at start: $(tail -1 "$work/upstream.err")"); finish; }
        [ "$(now_ms)" -lt "$deadline" ] || { problems+=("the upstream accepts no connection on $UPSTREAM_PORT within $ready_timeout s"); finish; }
        pause_for 0.2
    done
fi
echo "trial: starting $(expand "$run_cmd")" >&2
(cd "$work" && exec setsid bash -c "exec $(expand "$run_cmd")") >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
started server "$server_pid"
export SERVER_PID=$server_pid
deadline=$(( $(now_ms) + ready_timeout * 1000 ))
until check "$ready_cmd" ready.log; do
    server_alive || { problems+=("the old server exited at start: $(tail -1 "$work/server.err")"); finish; }
    [ "$(now_ms)" -lt "$deadline" ] || { problems+=("not ready within $ready_timeout s (--ready: see $work/ready.log)"); finish; }
    pause_for 0.2
done
[ -z "$check_old" ] || check "$check_old" checks.log || problems+=("--check-old fails on the old version before the update")

# ------------------------------------------------------------------ load --

(cd "$work" && exec setsid bash -c "$(expand "$load_cmd")") >"$work/load.out" 2>"$work/load.err" &
load_pid=$!
started load "$load_pid"
# The probe: --serving every 0.2 s while the load runs; one line per result.
: >"$work/probes"
(cd "$work" && exec setsid bash -c '
    while :; do
        if timeout 10 bash -c "$0" >/dev/null 2>&1; then echo ok; else echo fail $(date +%T.%N); fi
        sleep 0.2
    done' "$(expand "$serving_cmd")") >>"$work/probes" 2>/dev/null &
probe_pid=$!
started probe "$probe_pid"
pause_for "$apply_after"
kill -0 "$load_pid" 2>/dev/null || problems+=("the load ended before the apply (run it longer than --apply-after)")

# ----------------------------------------------------------------- apply --

tmo=(); [ -z "$timeout_ms" ] || tmo=(--timeout "$timeout_ms")
echo "trial: graft apply $server_pid patch.graft" >&2
"$graft" apply "$server_pid" "$work/patch.graft" --json "${tmo[@]}" >"$work/apply.json" 2>"$work/apply.err"
apply_rc=$?
kill -0 "$load_pid" 2>/dev/null || problems+=("the load had ended when the apply finished")
server_alive || { pause="server died"; problems+=("the server died during the apply: $(tail -1 "$work/server.err")"); finish; }
applied=0
if [ $apply_rc -eq 0 ]; then
    applied=1
    pause="$(json_field pause_us "$work/apply.json") us"
    extra=()
    for f in frames_continued frames_transferred objects; do
        v=$(json_field $f "$work/apply.json"); [ "${v:-0}" = 0 ] || extra+=("$v ${f//_/ }")
    done
    [ ${#extra[@]} -eq 0 ] || pause+=" ($(IFS=,; echo "${extra[*]}" | sed 's/,/, /g'))"
    "$graft" status "$server_pid" >"$work/status-applied.txt" 2>&1 || problems+=("graft status failed after the apply")
    check "$serving_cmd" checks.log || problems+=("--serving fails after the apply")
    [ -z "$check_new" ] || check "$check_new" checks.log || problems+=("--check-new fails after the apply: the new code is not live")
    pause_for "$revert_after"
else
    pause="refused"
    refusal=$(first_line "$work/apply.err")
    check "$serving_cmd" checks.log || problems+=("--serving fails after the refused apply")
fi

# ---------------------------------------------------------------- revert --

if [ $applied = 1 ]; then
    echo "trial: graft revert $server_pid" >&2
    "$graft" revert "$server_pid" --json "${tmo[@]}" >"$work/revert.json" 2>"$work/revert.err"
    revert_rc=$?
    server_alive || { revert="server died"; problems+=("the server died during the revert"); finish; }
    if [ $revert_rc -eq 0 ]; then
        revert="ok ($(json_field pause_us "$work/revert.json") us)"
        # graft put the old code back; what --check-old sees may be state the new code left (kept on the way back).
        [ -z "$check_old" ] || check "$check_old" checks.log || { revert="ok ($(json_field pause_us "$work/revert.json") us), but --check-old fails"; problems+=("--check-old fails after the revert (graft status: $("$graft" status "$server_pid" 2>&1 | head -1); state the new code wrote is kept by the way back)"); }
    else
        # The documented way back when a revert is refused: a patch from the new build to the old one.
        revert="refused"
        [ -n "$refusal" ] || refusal=$(first_line "$work/revert.err")
        echo "trial: revert refused; graft diff NEW OLD and apply that" >&2
        back_args=("${diff_args[@]}")
        [ -z "$back_transform" ] || back_args+=(--transform "$back_transform")
        if "$graft" diff "$new/$patched" "$old/$patched" -o "$work/back.graft" --explain "${back_args[@]}" \
               >"$work/back-explain.txt" 2>"$work/back-diff.err" &&
           "$graft" apply "$server_pid" "$work/back.graft" --json "${tmo[@]}" >"$work/back.json" 2>"$work/back.err"; then
            revert+="; NEW->OLD patch applied ($(json_field pause_us "$work/back.json") us)"
            [ -z "$check_old" ] || check "$check_old" checks.log || problems+=("--check-old fails after the NEW->OLD patch")
        else
            revert+="; NEW->OLD patch refused too"
            problems+=("the way back refused too: $(first_line "$work/back-diff.err")$(first_line "$work/back.err")")
        fi
    fi
    check "$serving_cmd" checks.log || problems+=("--serving fails after the revert")
fi

# --------------------------------------------------- the load's failures --

deadline=$(( $(now_ms) + load_wait * 1000 ))
while kill -0 "$load_pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do pause_for 0.2; done
if kill -0 "$load_pid" 2>/dev/null; then   # an endless load: SIGINT lets wrk-like clients print their summary
    kill -INT -- "-$load_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$load_pid" 2>/dev/null || break; sleep 0.1; done
    stop "$load_pid"
fi
wait "$load_pid" 2>/dev/null
load_rc=$?
load_pid=
stop "$probe_pid"; probe_pid=
server_alive || problems+=("the server died after the load")

out=$work/load.out
requests= nfailed=
if grep -q 'requests in .*read' "$out"; then                       # wrk
    requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$out")
    socket_errors=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1+\2+\3+\4/p' "$out")
    non_2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$out")
    nfailed=$(( ${socket_errors:-0} + ${non_2xx:-0} ))
elif grep -q '^Complete requests:' "$out"; then                    # ab
    requests=$(sed -n 's/^Complete requests: *\([0-9]*\).*/\1/p' "$out")
    ab_failed=$(sed -n 's/^Failed requests: *\([0-9]*\).*/\1/p' "$out")
    non_2xx=$(sed -n 's/^Non-2xx responses: *\([0-9]*\).*/\1/p' "$out")
    nfailed=$(( ${ab_failed:-0} + ${non_2xx:-0} ))
elif tail -1 "$out" | grep -Eq '^requests=[0-9]+ failed=[0-9]+'; then
    read -r requests nfailed < <(tail -1 "$out" | sed -E 's/^requests=([0-9]+) failed=([0-9]+).*/\1 \2/')
elif [ -n "$failures_cmd" ]; then
    nfailed=$(cd "$work" && LOAD_OUT=$out bash -c "$(expand "$failures_cmd")" 2>>"$work/load.err" | tail -1)
fi
probes=$(grep -c . "$work/probes") probes_failed=$(grep -c '^fail' "$work/probes")
if [[ ${nfailed:-} =~ ^[0-9]+$ ]]; then
    failed="$nfailed"
    [ -z "$requests" ] || failed+=" of $requests"
else
    failed="? (load exit $load_rc)"
    problems+=("the load's output tells no failures (give --failures)")
fi
failed+="; probes $probes_failed of $probes"
[ "${nfailed:-1}" = 0 ] || problems+=("the load had failures: $failed (see $out)")
[ "$probes_failed" = 0 ] || problems+=("$probes_failed --serving probes failed during the load (see $work/probes)")
finish
