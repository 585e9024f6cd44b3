# Shared by tests/kill/kill_test.sh and bench/kill_storm.sh: kvstore servers
# under redis-benchmark load, graft applies and reverts killed with SIGKILL
# (at a named point through GRAFT_TEST_KILL_AT, or after a delay), and the
# checks that nothing was harmed. Source it with root, build, work set.
graft=$build/bin/graft
export GRAFT=$graft
export GRAFT_STORE=$work/store
mkdir -p "$work/store"

declare -A vdir  # kvstore version -> its build directory
kv_build() {     # kv_build VERSION...
    local v
    for v in "$@"; do
        vdir[$v]=$("$root/scripts/example_build.sh" kvstore "$v" "$build") || return 1
        ln -sfn "${vdir[$v]}/../store"/* "$work/store/"
    done
}

# kv_patch FROM TO [diff args]: the patch, made once per work directory.
kv_patch() {
    local from=$1 to=$2; shift 2
    local p=$work/$from-$to.graft
    [ -e "$p" ] || "$graft" diff "${vdir[$from]}/kvstore" "${vdir[$to]}/kvstore" -o "$p" "$@" >/dev/null || return 1
    echo "$p"
}

kv_pid= kv_port= kv_version=
kv_start() {  # kv_start VERSION: a fresh server
    kv_version=$1
    # Gone before the server starts: the shell may read the file before the server's redirection empties it.
    rm -f "$work/server.out"
    KVSTORE_INSTANCE=kill "${vdir[$1]}/kvstore" --port 0 --threads 4 >"$work/server.out" 2>"$work/server.err" &
    kv_pid=$!
    local ready=
    for _ in $(seq 1500); do  # 30 s: a loaded machine (load 20 on 2 cores) took more than 4
        ready=$(grep -m1 ' ready on port ' "$work/server.out" 2>/dev/null) && break
        sleep 0.02
    done
    [[ $ready =~ ready\ on\ port\ ([0-9]+)$ ]] || { echo "kvstore $1 did not start"; return 1; }
    kv_port=${BASH_REMATCH[1]}
}
kv_stop() {
    [ -n "$kv_pid" ] || return 0
    kill -9 "$kv_pid" 2>/dev/null
    wait "$kv_pid" 2>/dev/null
    kv_pid=
}
kv() { timeout 10 redis-cli -p "$kv_port" "$@"; }

# kv_fill N: N string keys and N/10 lists of three elements.
kv_fill() {
    local n=$1 i
    { for ((i = 0; i < n; i++)); do echo "SET key:$i value:$i"; done
      for ((i = 0; i < n / 10; i++)); do echo "RPUSH list:$i a$i b$i c$i"; done; } |
        timeout 30 redis-cli -p "$kv_port" >/dev/null
}
# kv_verify N: every key and list reads back as written.
kv_verify() {
    local n=$1 i got want
    got=$( { for ((i = 0; i < n; i++)); do echo "GET key:$i"; done
             for ((i = 0; i < n / 10; i++)); do echo "LRANGE list:$i 0 -1"; done; } |
           timeout 30 redis-cli -p "$kv_port" | md5sum)
    want=$( { for ((i = 0; i < n; i++)); do echo "value:$i"; done
              for ((i = 0; i < n / 10; i++)); do printf 'a%s\nb%s\nc%s\n' $i $i $i; done; } | md5sum)
    [ "$got" == "$want" ]
}

# prog_build NAME VERSION: tests/programs/NAME/VERSION built with graft-cc into $work (its build in the store).
prog_build() {
    local out=$work/$1-$2
    mkdir -p "$out"
    [ -e "$out/prog" ] || "$build/bin/graft-cc" -O2 -pthread "$root/tests/programs/$1/$2"/*.c -o "$out/prog" || return 1
    echo "$out/prog"
}
# cp_start BINARY: the checkpoints program with 4 threads always in or near
# changed_timed(), so that an update waits on int3s they keep reaching.
cp_pid= cp_in=
cp_start() {
    rm -f "$work/cp.in" "$work/cp.out"; mkfifo "$work/cp.in"  # cp.out: as in kv_start
    "$1" rate 4 20 300 spin <"$work/cp.in" >"$work/cp.out" 2>&1 &
    cp_pid=$!
    exec {cp_in}>"$work/cp.in"  # its stdin stays open while it runs
    for _ in $(seq 250); do grep -q '^ready' "$work/cp.out" 2>/dev/null && return 0; sleep 0.02; done
    echo "the checkpoints program did not start"; return 1
}
cp_stop() {
    [ -n "$cp_pid" ] || return 0
    kill -9 "$cp_pid" 2>/dev/null
    exec {cp_in}>&-
    wait "$cp_pid" 2>/dev/null
    cp_pid=
}

load_pid=
load_start() {  # back-to-back redis-benchmark runs until load_stop
    rm -f "$work/load.stop" "$work/load.err"
    # A failure says how it ended (124: the 20 s limit; the machine's load
    # then), so that a stalled target is told from a client that failed.
    ( while [ ! -e "$work/load.stop" ]; do
          local began=$SECONDS rc=0
          timeout 20 redis-benchmark -p "$kv_port" -t get,set,incr,lpush,lrange_100 -n 3000 -c 8 -q \
              >/dev/null 2>>"$work/load.err" || rc=$?
          [ $rc == 0 ] || [ -e "$work/load.stop" ] ||
              echo "redis-benchmark failed (exit $rc after $((SECONDS - began)) s; load $(cut -d' ' -f1-3 /proc/loadavg))" >>"$work/load.err"
      done ) &
    load_pid=$!
}
load_stop() {
    [ -n "$load_pid" ] || return 0
    touch "$work/load.stop"
    wait "$load_pid" 2>/dev/null
    load_pid=
}

# wait_guardian ERRFILE: graft's guardian, which writes to graft's stderr
# (ERRFILE), has finished.
wait_guardian() {
    local file g
    file=$(readlink -f "$1")
    for _ in $(seq 500); do
        g=
        for p in $(pgrep -x graft-guardian); do
            [ "$(readlink "/proc/$p/fd/2" 2>/dev/null)" == "$file" ] && g=$p
        done
        [ -z "$g" ] && return 0
        sleep 0.02
    done
    echo "guardian $g still running after 10 s"
    return 1
}

# text_check PID BINARY: tests/kill/text_check.py, through the server
# text_check_serve started (one Python start for a whole storm) if it runs.
text_check_pid=
text_check_serve() {
    coproc TEXT_CHECK { exec python3 "$root/tests/kill/text_check.py" --serve; }
    text_check_pid=$TEXT_CHECK_PID
}
text_check() {
    [ -n "$text_check_pid" ] && kill -0 "$text_check_pid" 2>/dev/null ||
        { python3 "$root/tests/kill/text_check.py" "$1" "$2"; return; }
    local line
    echo "$1 $2" >&"${TEXT_CHECK[1]}"
    while IFS= read -r -t 120 line <&"${TEXT_CHECK[0]}"; do
        [[ $line == done\ * ]] && { [ "$line" == "done 0" ]; return; }
        echo "$line"
    done
    echo "text: the text check server did not answer"; return 1
}

# healthy PID BINARY: alive, untraced, no thread stopped, no int3 or other byte of graft's left in its code
# but the entries of applied patches, no region of graft's that no applied patch names. Prints what is wrong.
healthy() {
    local pid=$1 binary=$2 bad=0 t state
    if ! kill -0 "$pid" 2>/dev/null || [ "$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)" == Z ]; then
        echo "target died"; return 1
    fi
    [ "$(awk '/^TracerPid:/ {print $2}' /proc/$pid/status)" == 0 ] || { echo "still traced"; bad=1; }
    for t in /proc/$pid/task/*; do
        state=$(awk '{print $3}' "$t/stat" 2>/dev/null)
        [[ $state == [Tt] ]] && { echo "thread ${t##*/} stopped ($state)"; bad=1; }
    done
    text_check "$pid" "$binary" || bad=1
    local status
    status=$("$graft" status "$pid")
    grep -q 'unrecorded region' <<<"$status" && { echo "an unrecorded region is left"; bad=1; }
    # By its name, or by its code where the kernel leaves anonymous memory nameless.
    grep -q "graft's SIGTRAP handler left" <<<"$status" && { echo "graft's SIGTRAP handler is left"; bad=1; }
    return $bad
}

trials=0 harmed=0 fired=0
declare -A outcomes  # "KIND OP killed|not-killed all|none|dead" -> trials
# kill_setup: the programs and patches every kind of trial uses.
kill_setup() {
    kv_build v1 v2 v3 v4 v6 v7 || return 1
    p12=$(kv_patch v1 v2) && p34=$(kv_patch v3 v4) &&
        p67=$(kv_patch v6 v7 --transform "${vdir[v7]}/graft-update.c") || { echo "graft diff failed"; return 1; }
    cp_v1=$(prog_build checkpoints v1) && cp_v2=$(prog_build checkpoints v2) || { echo "graft-cc failed"; return 1; }
    pcp=$work/checkpoints.graft
    "$graft" diff "$cp_v1" "$cp_v2" -o "$pcp" >/dev/null || { echo "graft diff failed"; return 1; }
}

# run_killed POINT ARGS...: `graft ARGS --timeout 3000` (output in $work/graft.out
# and .err) killed at the named POINT, or from outside (kill -9) after:MICROSECONDS;
# sets the caller's rc (graft's status) and killed (yes if graft died of it).
run_killed() {
    local point=$1; shift
    killed=no
    if [[ $point == after:* ]]; then
        "$graft" "$@" --timeout 3000 >"$work/graft.out" 2>"$work/graft.err" &
        local gpid=$!
        sleep "$(printf '%d.%06d' $((${point#after:} / 1000000)) $((${point#after:} % 1000000)))"
        kill -9 $gpid 2>/dev/null && killed=yes
        wait $gpid 2>/dev/null
        rc=$?
        [ $rc == 137 ] || killed=no  # it had finished before the kill
    else
        # In a subshell, which reports graft's death as a status (no "Killed" from bash).
        rc=$( (GRAFT_TEST_KILL_AT=$point "$graft" "$@" --timeout 3000 >"$work/graft.out" 2>"$work/graft.err"
               echo $?) 2>/dev/null)
        grep -q 'GRAFT_TEST_KILL_AT: killed at' "$work/graft.err" && killed=yes
    fi
}

# trial KIND PHASE | trial KIND after:MICROSECONDS: one update of KIND killed
# at the named point, or from outside (kill -9) that long after it started.
trial() {
    local kind=$1 phase=$2 from to patch n=200 op=apply problems=() rc killed=no outcome started=$SECONDS
    local pid binary
    case $kind in
        code) from=v1 to=v2 patch=$p12 ;;
        data) from=v3 to=v4 patch=$p34 n=3000 ;;
        init) from=v6 to=v7 patch=$p67 ;;
        revert) from=v1 to=v2 patch=$p12 op=revert ;;
        int3) patch=$pcp ;;
        int3-revert) patch=$pcp op=revert ;;
    esac
    if [[ $kind == int3* ]]; then
        binary=$cp_v1
        cp_start "$binary" || { echo "HARMED $kind $phase: the program did not start"; harmed=$((harmed + 1)); return; }
        pid=$cp_pid
    else
        binary=${vdir[$from]}/kvstore
        kv_start "$from" || { echo "HARMED $kind $phase: server did not start"; harmed=$((harmed + 1)); return; }
        pid=$kv_pid
        kv_fill $n
    fi
    if [ $op == revert ]; then
        "$graft" apply "$pid" "$patch" --timeout 10000 >/dev/null 2>"$work/pre.err" ||
            problems+=("the apply before the revert failed: $(head -1 "$work/pre.err")")
    fi
    [ -n "$kv_pid" ] && load_start
    local args=("$op" "$pid"); [ $op == apply ] && args+=("$patch")
    run_killed "$phase" "${args[@]}"
    [ $killed == yes ] && { wait_guardian "$work/graft.err" || problems+=("guardian did not finish"); }
    load_stop
    local why applied=no
    why=$(healthy "$pid" "$binary") || problems+=("$why")
    if [[ $why == *"target died"* ]]; then  # how: the evidence a rare death needs (reaped here, not in the subshell)
        local status=0; wait "$pid" 2>/dev/null; status=$?
        problems+=("its exit status $status$([ $status -gt 128 ] && echo " (SIG$(kill -l $((status - 128))))")")
    fi
    "$graft" status "$pid" 2>/dev/null | grep -qE '^process [0-9]+: [0-9]+ patch' && applied=yes
    if [[ $kind == int3* ]] && kill -0 "$pid" 2>/dev/null; then
        [ "$(ls /proc/$pid/task | wc -l)" == 5 ] || problems+=("$(ls /proc/$pid/task | wc -l) threads instead of 5")
        if [ $op == apply ]; then outcome=$([ $applied == yes ] && echo all || echo none)
        else outcome=$([ $applied == yes ] && echo none || echo all); fi
        if [ $op == apply ] && [ $applied == no ]; then
            "$graft" apply "$pid" "$patch" --timeout 10000 >/dev/null 2>"$work/again.err" ||
                problems+=("apply after the kill failed: $(head -1 "$work/again.err")")
        elif [ $op == revert ] && [ $applied == yes ]; then
            "$graft" revert "$pid" --timeout 10000 >/dev/null 2>"$work/again.err" ||
                problems+=("revert after the kill failed: $(head -1 "$work/again.err")")
        fi
        why=$(healthy "$pid" "$binary") || problems+=("after the second update: $why")
    elif [[ $kind != int3* ]] && kill -0 "$pid" 2>/dev/null; then
        kv_verify $n || problems+=("data does not read back as written")
        local errors version
        errors=$(kv INFO | tr -d '\r' | sed -n 's/^total_error_replies://p')
        [ "${errors:-0}" == 0 ] || problems+=("$errors error replies")
        [ -s "$work/load.err" ] && problems+=("load: $(head -1 "$work/load.err")")
        version=$(kv INFO | tr -d '\r' | sed -n 's/^kvstore_version://p')
        if [ $op == apply ]; then
            outcome=$([ $applied == yes ] && echo all || echo none)
            [ "$version" == "$([ $applied == yes ] && echo $to || echo $from)" ] ||
                problems+=("version $version but applied=$applied")
            if [ $applied == no ]; then
                "$graft" apply "$kv_pid" "$patch" >/dev/null 2>"$work/again.err" ||
                    problems+=("apply after the kill failed: $(head -1 "$work/again.err")")
            fi
        else
            outcome=$([ $applied == yes ] && echo none || echo all)
            [ "$version" == "$([ $applied == yes ] && echo $to || echo $from)" ] ||
                problems+=("version $version but applied=$applied")
            if [ $applied == yes ]; then
                "$graft" revert "$kv_pid" >/dev/null 2>"$work/again.err" ||
                    problems+=("revert after the kill failed: $(head -1 "$work/again.err")")
            fi
        fi
        kv_verify $n || problems+=("data does not read back after the second update")
    fi
    [ $killed == no ] && [ $rc != 0 ] && problems+=("graft failed without being killed: $(head -1 "$work/graft.err")")
    local key="$kind $op $([ $killed == yes ] && echo killed || echo not-killed) ${outcome:-dead}"
    outcomes[$key]=$((${outcomes[$key]:-0} + 1))
    kv_stop
    cp_stop
    trials=$((trials + 1))
    [ $killed == yes ] && fired=$((fired + 1))
    if [ ${#problems[@]} -gt 0 ]; then
        harmed=$((harmed + 1))
        echo "HARMED $kind $op killed at $phase (killed: $killed): $(IFS=';'; echo "${problems[*]}")"
        sed -n 's/^/    /p' "$work/graft.err" | head -12
    else
        echo "ok     $kind $op killed at $phase (killed: $killed, ${outcome:-?} of the update, $((SECONDS - started)) s)"
    fi
}

