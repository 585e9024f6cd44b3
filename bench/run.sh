#!/usr/bin/env bash
# graft benchmarks: steady-state overhead of the graft-cc policies (a CPU-bound
# program and the kvstore example under redis-benchmark) and pause/total time
# of graft apply/revert by thread count and patch size.
#
#   bench/run.sh BUILD_DIR [cpu] [kv] [pause]     (default: all; run by `make bench`)
#   bench/run.sh BUILD_DIR evo [evolution] [patchsize] [checkpoints] [trace]
#       the second set (bench/evolution_bench.py: evolution steps of the examples
#       under load, patch size to 1000 functions, checkpoints dynamic vs poll,
#       per-thread stop/check cost); default all four, about 8 minutes.
#   bench/run.sh BUILD_DIR rate [threads]          (also: threads alone)
#       checkpoints against the call rate into the changed function and against
#       threads to 1024, dynamic vs poll interleaved, with the per-thread stop and
#       check cost (bench/checkpoint_bench.py; about 12 minutes for both)
#   bench/plot.sh                                  PNGs from the CSVs (gnuplot)
#
# Writes bench/results/*.csv and regenerates the marked sections of
# docs/BENCHMARKS.md. About 8-10 minutes in all on 2 cores. Knobs: see bench/bench.py.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [cpu] [kv] [pause]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
if [ "${2:-}" = evo ]; then
    build=$1; shift 2
    exec python3 "$here/evolution_bench.py" "$build" "$@"
fi
if [ "${2:-}" = rate ] || [ "${2:-}" = threads ]; then
    exec python3 "$here/checkpoint_bench.py" "$@"
fi
exec python3 "$here/bench.py" "$@"
