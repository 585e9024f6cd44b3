#!/usr/bin/env bash
# The cost, inside the pause, of the search for pointers into a global that
# gets new storage, against the memory the process has: for each TOUCHED
# size (MiB the process wrote; it also holds 1024 MiB it never touched), a
# fresh target updated by each graft build given, one after the other.
# Usage: bench/data/global_search.sh GRAFT_BUILD... (each with bin/graft, bin/graft-cc)
# Prints one CSV line per run: build,touched_mib,pause_us,migrate_us,searched_bytes,references.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GRAFT_STORE=$work/store
first=$1
for v in 1 2; do "$first/bin/graft-cc" -O2 -DVERSION=$v -o "$work/v$v" "$here/global_search.c"; done
"$first/bin/graft" diff "$work/v1" "$work/v2" -o "$work/p.graft" >/dev/null
echo "build,touched_mib,pause_us,migrate_us,searched_bytes,references"
for touched in ${TOUCHED:-0 64 256 1024}; do
  for build in "$@"; do
    coproc target { exec "$work/v1" "$touched" 1024; }
    read -r ready pid <&"${target[0]}"
    "$build/bin/graft" apply "$pid" "$work/p.graft" --json > "$work/apply.json"
    echo p >&"${target[1]}"; read -r answer <&"${target[0]}"
    [ "$answer" = "2 8080 0" ] || { echo "wrong answer after the update: $answer" >&2; exit 1; }
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(','.join(str(x) for x in (sys.argv[2], sys.argv[3], d['pause_us'], d['migrate_us'], d.get('searched_bytes', ''), d.get('global_references', ''))))" "$work/apply.json" "$build" "$touched"
    echo q >&"${target[1]}"; wait "$target_PID" 2>/dev/null || true
  done
done
