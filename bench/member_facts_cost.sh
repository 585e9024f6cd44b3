#!/bin/sh
# What graft-cc's member facts cost at compile time (issue 15): every C unit
# of tests/programs and of both examples' seven versions compiled with
# graft-cc -O2 -c, once with the records and once with
# --graft-member-facts=off, one run each; prints the CPU seconds (user +
# system, the children's) of each and their ratio, and the records' size.
# At run time they cost nothing: their section is not loaded.
#   bench/member_facts_cost.sh BUILD_DIR
set -eu
build=${1:?usage: bench/member_facts_cost.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
cc="$build/bin/graft-cc"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
units=$(find "$root/tests/programs" "$root/examples/kvstore" "$root/examples/httpd" -name '*.c' -path '*/v[0-9]*/*' | sort)

compile_all() {  # $1: out dir, $2...: extra graft-cc options
  out=$1
  shift
  mkdir -p "$out"
  n=0
  for unit in $units; do
    n=$((n + 1))
    GRAFT_STORE="$work/store" "$cc" "$@" -O2 -pthread -I "$root/include" -I "$(dirname "$unit")" -c "$unit" \
      -o "$out/$n.o" 2>/dev/null || true
  done
}

cpu() {  # the children's user + system seconds so far (times, in this shell: not in a $(...) subshell)
  times > "$work/times"
  sed -n 2p "$work/times" | awk '{ split($1, u, "m"); split($2, s, "m"); printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }'
}

times > /dev/null
cpu > "$work/start"
compile_all "$work/off" --graft-member-facts=off
cpu > "$work/middle"
compile_all "$work/on"
cpu > "$work/end"
start=$(cat "$work/start") middle=$(cat "$work/middle") end=$(cat "$work/end")
off=$(echo "$middle - $start" | bc)
on=$(echo "$end - $middle" | bc)
bytes=0
for o in "$work"/on/*.o; do
  size=$(readelf -S -W "$o" | awk '{ for (i = 1; i < NF; i++) if ($i == ".graft.member_facts") print $(i + 4) }')
  bytes=$((bytes + 0x${size:-0}))
done
echo "units: $(echo "$units" | wc -l)"
echo "cpu seconds without records: $off"
echo "cpu seconds with records:    $on"
echo "ratio: $(echo "scale=3; $on / $off" | bc)"
echo "records: $bytes bytes in .graft.member_facts (not loaded)"
