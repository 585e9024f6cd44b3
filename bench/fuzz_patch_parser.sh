#!/usr/bin/env bash
# The long run of the patch parser fuzzer (the suite runs it 30 s): by
# default one hour, on the same seed corpus of real patches.
# Usage: bench/fuzz_patch_parser.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-3600}
build=${2:-$root/build}
ninja -C "$build" patch_parser_fuzzer graft graft-cc >/dev/null
exec "$root/tests/fuzz/fuzz_patch_parser.sh" "$build/bin" "$seconds" "$root/bench/results"
