#!/usr/bin/env bash
# Fuzzes the patch parser (patch_parser_fuzzer, libFuzzer with ASan and
# UBSan) for SECONDS, from a seed corpus of real patches that this build's
# graft-cc and graft make: a code patch, a stacked one, a data patch and a
# signed one. Fails on any crash, leak, timeout or refusal longer than a
# line; the crashing input is kept in KEEP_DIR (default $TMPDIR).
# Usage: fuzz_patch_parser.sh BIN_DIR SECONDS [KEEP_DIR]
set -euo pipefail
bin=$(cd "$1" && pwd)
seconds=$2
keep=${3:-${TMPDIR:-/tmp}}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/graft-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GRAFT_STORE=$work/store
mkdir -p "$work/seeds" "$work/corpus"

build() {  # build NAME VERSION: prints the binary
    local out=$work/$1-$2
    mkdir -p "$out"
    cp "$root/tests/programs/$1/$2"/* "$out/"
    "$bin/graft-cc" -O2 -pthread "$out"/*.c -o "$out/prog" >&2
    echo "$out/prog"
}
b1=$(build basic v1); b2=$(build basic v2); b3=$(build basic v3)
d1=$(build data v1); d2=$(build data v2)
"$bin/graft" diff "$b1" "$b2" -o "$work/seeds/basic12.graft" 2>/dev/null
"$bin/graft" diff "$b2" "$b3" -o "$work/seeds/basic23.graft" 2>/dev/null
"$bin/graft" diff "$d1" "$d2" -o "$work/seeds/data12.graft" 2>/dev/null
"$bin/graft" keygen --out "$work/key" >/dev/null
"$bin/graft" diff "$b1" "$b3" -o "$work/seeds/signed13.graft" --sign "$work/key/graft-signing.key" 2>/dev/null
echo "seeds: $(ls "$work/seeds" | wc -l) patches, $(cat "$work/seeds"/* | wc -c) bytes"

status=0
started=$SECONDS
"$bin/patch_parser_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$work/seeds" >"$work/fuzz.log" 2>&1 || status=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
echo "fuzzed ${runs:-?} inputs in $((SECONDS - started)) s (corpus grew to $(ls "$work/corpus" | wc -l) inputs)"
if [ "$status" -ne 0 ]; then
    for artifact in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
        [ -e "$artifact" ] && cp "$artifact" "$keep/" && echo "kept $keep/$(basename "$artifact")"
    done
    grep -m1 -A30 "ERROR\|a refusal is not one line\|runtime error" "$work/fuzz.log" || tail -40 "$work/fuzz.log"
    echo "FAIL: the patch parser fuzzer found a problem (exit $status)"
    exit 1
fi
echo "ok: no crash, leak, timeout or multi-line refusal"
