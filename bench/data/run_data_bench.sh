#!/bin/bash
# Pause and objects transformed per second against the number of live objects.
# usage: bench/data/run_data_bench.sh BUILD_DIR [COUNTS...]   (writes bench/results/data.csv)
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd); shift
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(1000 10000 100000 1000000 10000000)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); export GRAFT_STORE=$work/store
pid=; cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }; trap cleanup EXIT
for v in v1 v2; do mkdir -p "$work/$v"; cp "$here/$v.c" "$work/$v/main.c"; "$build/bin/graft-cc" -O2 -o "$work/$v/item" "$work/$v/main.c"; done
"$build/bin/graft" diff "$work/v1/item" "$work/v2/item" -o "$work/p.graft" >/dev/null
out=$here/../results/data.csv
echo "objects,pause_us,migrate_us,total_ms,objects_per_s,rss_kb" > "$out"
for n in "${counts[@]}"; do
  coproc target { exec "$work/v1/item" "$n"; }
  pid=$target_PID
  read -r ready sum <&"${target[0]}"
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  json=$("$build/bin/graft" apply "$pid" "$work/p.graft" --json --timeout 60000)
  echo s >&"${target[1]}"; read -r after <&"${target[0]}"
  [ "$after" = "$sum" ] || { echo "values changed: $sum -> $after" >&2; exit 1; }
  python3 - "$n" "$json" "$rss" >> "$out" <<'PY'
import json, sys
n, j, rss = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
print(f"{j['objects']},{j['pause_us']},{j['migrate_us']},{j['total_ms']:.1f},{j['objects']/max(j['migrate_us'],1)*1e6:.0f},{rss}")
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
cat "$out"
