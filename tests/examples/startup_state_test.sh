#!/usr/bin/env bash
# The corpus's start-up step (v6 -> v7 of each example server adds a global
# that start-up code sets): graft diff refuses it without update-time code,
# in one line naming the global and the function that sets it, and makes the
# patch with the step's v7/graft-update.c. (The evolution applies that patch
# under load and checks every response.)
# Usage: startup_state_test.sh BIN_DIR
set -euo pipefail
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/graft-startup-state.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GRAFT_STORE=$work/store
mkdir -p "$GRAFT_STORE"
fails=0
check() {  # check SERVER GLOBAL SETTER
    local srv=$1 global=$2 setter=$3 v6 v7 out
    v6=$("$root/scripts/example_build.sh" "$srv" v6 "$bin/..")
    v7=$("$root/scripts/example_build.sh" "$srv" v7 "$bin/..")
    ln -sfn "$v6/../store"/* "$v7/../store"/* "$GRAFT_STORE/"
    if out=$("$bin/graft" diff "$v6/$srv" "$v7/$srv" -o "$work/$srv.graft" 2>&1); then
        echo "FAIL $srv: graft diff v6 v7 without update-time code made a patch"; fails=$((fails + 1))
    elif [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ] || [[ $out != *"new global $global is set by $setter"* ]] ||
         [[ $out != *"which the running process will not run again"* ]] || [[ $out != *"GRAFT_INIT("* ]]; then
        echo "FAIL $srv: the refusal is not one line naming $global and $setter: $out"; fails=$((fails + 1))
    elif [ -e "$work/$srv.graft" ]; then
        echo "FAIL $srv: a refused diff wrote a patch"; fails=$((fails + 1))
    else
        echo "ok   $srv: refused without update-time code: $out"
    fi
    if out=$("$bin/graft" diff "$v6/$srv" "$v7/$srv" --transform "$root/examples/$srv/v7/graft-update.c" \
                 -o "$work/$srv.graft" --explain 2>&1) &&
       [[ $out == *"start-up state: $global is set by $setter"*"update-time code in graft-update.c gives it its value"* ]]; then
        echo "ok   $srv: with v7/graft-update.c, the patch is made and --explain says how $global gets its value"
    else
        echo "FAIL $srv: with v7/graft-update.c: $out"; fails=$((fails + 1))
    fi
}
check kvstore kv_instance print_ready
check httpd server.c::extra_header server_start
[ "$fails" -eq 0 ]
