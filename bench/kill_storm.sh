#!/usr/bin/env bash
# The killed-updater storm (issue 14; docs/RELIABILITY.md "Killed updater"):
# graft apply / revert killed with SIGKILL over and over, each time at a
# random point: half the trials at a named point with a random count
# (GRAFT_TEST_KILL_AT), half from outside after a random delay (0-200 ms).
#
#   bench/kill_storm.sh [--fresh] [--tally FILE] BUILD_DIR SECONDS [SEED]
#
# By default one target is kept across a burst of trials (BURST, default
# 40): kvstore under redis-benchmark load (code v1 -> v2 and its revert,
# data v3 -> v4 with 3,000 keys, update-time code v6 -> v7 and its revert)
# or tests/programs/checkpoints (threads that keep the update waiting on
# int3s, apply and revert). A trial runs the operation the target's state
# calls for (apply when no patch is applied, else revert), kills graft, waits
# for its guardian to finish, and checks what tests/kill/kill_test.sh
# checks: alive, untraced, no thread stopped, no int3 or unrecorded region
# left, every key and list as written and no error reply, all or none of the
# update (graft status agrees with INFO's version). Patchable again is shown
# by the next trial's operation (an operation not killed that fails harms
# the trial before it) and, at the end of a burst, by one more update. The
# target is started again only when a trial harmed it (its evidence is kept
# in the work directory's harmed/) or when it cannot be brought back (a data
# patch applied: graft refuses to revert it).
#
# --fresh: the first storm's trials instead (kill_lib.sh's trial: a new
# server, keys and load for every trial; 10-16 s each).
# --tally FILE: the tally (trials, kills by kind, point and outcome, harmed,
# kills per minute) is rewritten there after every trial.
#
# Prints every harmed trial, then the tally; exit status 1 if any harmed.
set -u -o pipefail
fresh=0 tally=
while [ $# -gt 0 ]; do
    case $1 in
        --fresh) fresh=1; shift ;;
        --tally) tally=$2; shift 2 ;;
        *) break ;;
    esac
done
[ $# -ge 2 ] || { echo "usage: $0 [--fresh] [--tally FILE] BUILD_DIR SECONDS [SEED]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
seconds=$2
seed=${3:-$$}
RANDOM=$seed
burst=${BURST:-40}
work=$(mktemp -d "${TMPDIR:-/tmp}/graft-kill-storm.XXXXXX")
source "$root/tests/kill/kill_lib.sh"
trap 'load_stop; kv_stop; cp_stop' EXIT
started_at=$(date -u '+%Y-%m-%d %H:%M UTC')

kill_setup || exit 1
text_check_serve

points=(attach syscall syscall-entry syscall-exit mapped borrowed planted wait parked commit registers committed
        reverted unmapped finish)
# random_point: a named point with a random count, or after:MICROSECONDS.
random_point() {
    if [ $((RANDOM % 2)) == 0 ]; then
        local point=${points[RANDOM % ${#points[@]}]}
        case $point in
            commit) point=commit:$((1 + RANDOM % 2000)) ;;
            syscall*|mapped|wait|parked|borrowed) point=$point:$((1 + RANDOM % 6)) ;;
        esac
        echo "$point"
    else
        echo "after:$((RANDOM * 10 % 200000))"
    fi
}

if [ $fresh == 1 ]; then
    kinds=(code data init revert int3 int3-revert)
    end=$((SECONDS + seconds))
    while [ $SECONDS -lt $end ]; do
        trial "${kinds[RANDOM % ${#kinds[@]}]}" "$(random_point)" >"$work/trial.log"
        grep -v '^ok ' "$work/trial.log"
        [ -n "$tally" ] && { echo "kill storm (--fresh): $trials trials, $fired killed, $harmed harmed"
                             for key in "${!outcomes[@]}"; do echo "  ${outcomes[$key]}  $key"; done | sort -k2; } >"$tally"
    done
    for key in "${!outcomes[@]}"; do echo "  ${outcomes[$key]}  $key"; done | sort -k2
    echo "kill storm: $trials trials, $fired killed, $harmed harmed"
    rm -rf "$work"
    [ $harmed == 0 ]; exit
fi

# ---- one target across a burst of trials ----
declare -A tally_by   # "KIND OP POINT killed|not-killed all|none|dead" -> trials
kills=0 kills_named=0 kills_outside=0 restarts=0 proofs=0 harness=0
storm_start=$SECONDS
target= pid= binary= patch= from= to= n= applied=no errors_before=0 previous=

# target_start KIND: a fresh target of KIND (code, data, init, int3), no patch applied.
target_start() {
    target=$1 applied=no errors_before=0 previous="a fresh start"
    restarts=$((restarts + 1))
    if [ "$target" == int3 ]; then
        binary=$cp_v1 patch=$pcp
        cp_start "$binary" || return 1
        pid=$cp_pid
        return 0
    fi
    case $target in
        code) from=v1 to=v2 patch=$p12 n=200 ;;
        data) from=v3 to=v4 patch=$p34 n=3000 ;;
        init) from=v6 to=v7 patch=$p67 n=200 ;;
    esac
    binary=${vdir[$from]}/kvstore
    kv_start "$from" || return 1
    pid=$kv_pid
    kv_fill $n
    load_start
}
target_stop() {
    load_stop; kv_stop; cp_stop
    target=
}

# keep_evidence NAME: what a harmed trial left, in harmed/NAME, before the target goes.
keep_evidence() {
    local dir=$work/harmed/$1
    mkdir -p "$dir"
    cp "$work"/graft.{out,err} "$dir/" 2>/dev/null
    cp "$work"/server.{out,err} "$work/load.err" "$work/cp.out" "$dir/" 2>/dev/null
    "$graft" status "$pid" >"$dir/graft-status" 2>&1
    cp "/proc/$pid/maps" "/proc/$pid/status" "$dir/" 2>/dev/null
    for t in /proc/$pid/task/*; do
        echo "${t##*/} $(awk '{print $3}' "$t/stat" 2>/dev/null) $(cat "$t/wchan" 2>/dev/null)"
    done >"$dir/threads" 2>/dev/null
}

write_tally() {
    [ -n "$tally" ] || return 0
    local elapsed=$((SECONDS - storm_start)) rate
    rate=$(awk -v k=$kills -v s=$elapsed 'BEGIN { printf "%.1f", (s > 0 ? k * 60 / s : 0) }')
    { echo "kill storm: $trials trials, $kills kills ($kills_named at a named point, $kills_outside from outside)," \
           "$harmed harmed, $restarts target starts, $proofs end-of-burst updates, $harness harness failures" \
           "(a fresh target that did not start: no trial)"
      echo "seed $seed, burst $burst, started $started_at, $elapsed s, $rate kills a minute"
      echo "machine: $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
      echo "trials by kind, operation, point, killed or not, outcome:"
      for key in "${!tally_by[@]}"; do printf '%7d  %s\n' "${tally_by[$key]}" "$key"; done | sort -k2,3 -k4,6
    } >"$tally.tmp" && mv "$tally.tmp" "$tally"
}

# storm_trial: the operation the target's state calls for, killed at a random point, and the checks.
storm_trial() {
    local point op problems=() rc killed=no outcome= now_applied=no why errors version
    point=$(random_point)
    op=$([ $applied == yes ] && echo revert || echo apply)
    local args=("$op" "$pid"); [ $op == apply ] && args+=("$patch")
    run_killed "$point" "${args[@]}"
    wait_guardian "$work/graft.err" || problems+=("guardian did not finish")
    [ $killed == no ] && [ "$rc" != 0 ] &&
        problems+=("graft $op failed without being killed (after $previous): $(head -1 "$work/graft.err")")
    why=$(healthy "$pid" "$binary") || problems+=("$why")
    "$graft" status "$pid" 2>/dev/null | grep -qE '^process [0-9]+: [0-9]+ patch' && now_applied=yes
    if kill -0 "$pid" 2>/dev/null; then
        if [ "$op" == apply ]; then outcome=$([ $now_applied == yes ] && echo all || echo none)
        else outcome=$([ $now_applied == yes ] && echo none || echo all); fi
        if [ "$target" == int3 ]; then
            [ "$(ls /proc/$pid/task | wc -l)" == 5 ] || problems+=("$(ls /proc/$pid/task | wc -l) threads instead of 5")
        else
            kv_verify $n || problems+=("data does not read back as written")
            errors=$(kv INFO | tr -d '\r' | sed -n 's/^total_error_replies://p')
            [ "${errors:-0}" == "$errors_before" ] || problems+=("$((errors - errors_before)) error replies")
            errors_before=${errors:-0}
            if [ -s "$work/load.err" ]; then problems+=("load: $(head -1 "$work/load.err")"); : >"$work/load.err"; fi
            version=$(kv INFO | tr -d '\r' | sed -n 's/^kvstore_version://p')
            [ "$version" == "$([ $now_applied == yes ] && echo $to || echo $from)" ] ||
                problems+=("version $version but applied=$now_applied")
        fi
    fi
    local kind=$target point_name=${point%%:*}
    local key="$kind $op $point_name $([ $killed == yes ] && echo killed || echo not-killed) ${outcome:-dead}"
    tally_by[$key]=$((${tally_by[$key]:-0} + 1))
    trials=$((trials + 1))
    if [ $killed == yes ]; then
        kills=$((kills + 1))
        if [[ $point == after:* ]]; then kills_outside=$((kills_outside + 1)); else kills_named=$((kills_named + 1)); fi
    fi
    applied=$now_applied
    previous="$kind $op killed at $point (killed: $killed)"
    if [ ${#problems[@]} -gt 0 ]; then
        harmed=$((harmed + 1))
        echo "HARMED #$trials $previous: $(IFS=';'; echo "${problems[*]}")"
        sed -n 's/^/    /p' "$work/graft.err" | head -12
        keep_evidence "$trials-$kind-$op-${point/:/-}"
        return 1
    fi
    return 0
}

# burst_end: the last trial's state is patchable again (one more update, not killed).
burst_end() {
    local op=apply args
    [ $applied == yes ] && op=revert
    [ "$target" == data ] && [ $applied == yes ] && return 0  # not revertible: the next burst starts afresh
    args=("$op" "$pid"); [ $op == apply ] && args+=("$patch")
    proofs=$((proofs + 1))
    if ! "$graft" "${args[@]}" --timeout 10000 >"$work/graft.out" 2>"$work/graft.err"; then
        harmed=$((harmed + 1))
        echo "HARMED #$trials $previous: the update after it failed: $(head -1 "$work/graft.err")"
        keep_evidence "$trials-patchable-again"
    fi
}

kinds=(code data init int3)
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
    kind=${kinds[RANDOM % ${#kinds[@]}]}
    target_start "$kind" || { echo "HARNESS: a fresh $kind target did not start"; harness=$((harness + 1)); target_stop; continue; }
    for ((i = 0; i < burst && SECONDS < end; i++)); do
        if ! storm_trial; then
            target_stop
            target_start "$kind" || { echo "HARNESS: a fresh $kind target did not start"; harness=$((harness + 1)); target_stop; break; }
            continue
        fi
        write_tally
        # A data patch cannot be reverted: a fresh server and keys.
        if [ "$kind" == data ] && [ $applied == yes ]; then
            target_stop
            target_start data || { echo "HARNESS: a fresh data target did not start"; harness=$((harness + 1)); target_stop; break; }
        fi
    done
    [ -n "$target" ] && burst_end
    target_stop
    write_tally
done
write_tally
[ -n "$tally" ] && cat "$tally"
echo "kill storm: $trials trials, $kills killed, $harmed harmed"
if [ $harmed == 0 ]; then rm -rf "$work"; else echo "evidence: $work/harmed"; fi
[ $harmed == 0 ]
