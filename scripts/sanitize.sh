#!/usr/bin/env bash
# Builds graft with AddressSanitizer and UndefinedBehaviorSanitizer in its
# own build directory and runs the whole suite once under them.
#
#   scripts/sanitize.sh [BUILD_DIR] [CTEST_ARGS...]    (BUILD_DIR: build-sanitize)
#
# graft's own code is sanitized (-DGRAFT_SANITIZE=address,undefined): the
# tools, the libraries and the test binaries. The pass plugin (it runs
# inside clang) and the programs the tests build with graft-cc are not.
# Every report is written to BUILD_DIR/sanitizer/ (log_path), so that a
# finding never hides in a test's expected output; the script lists them,
# and those that reached a test's output anyway.
# Exit status 0 when the suite passed and no sanitizer reported anything.
set -u -o pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-sanitize}
shift || true
jobs=${JOBS:-2}
# ccache when there is one: the sanitized objects differ from the plain
# build's, but a re-run after a small change recompiles only that change.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRAFT_WERROR=ON \
      -DGRAFT_SANITIZE=address,undefined "${launcher[@]}" >/dev/null || exit 1
ninja -C "$build" -j"$jobs" || exit 1
reports=$build/sanitizer
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="log_path=$reports/lsan"
(cd "$build" && ctest -j"$jobs" --timeout 900 --output-on-failure "$@")
suite=$?
found=$(find "$reports" -type f | sort)
if [ -n "$found" ]; then
    echo "sanitize: reports:"
    for f in $found; do echo "== $f"; head -40 "$f"; done
fi
# A report may also reach a test's output instead (UBSan beside ASan does
# not always honour log_path): the tests' log is searched too.
inline=$(grep -E 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$build/Testing/Temporary/LastTest.log" 2>/dev/null | sort -u)
[ -n "$inline" ] && { echo "sanitize: reports in the tests' output:"; echo "$inline"; }
echo "sanitize: suite exit status $suite, $(echo -n "$found" | grep -c .) report files, $(echo -n "$inline" | grep -c .) reports in the tests' output"
[ $suite -eq 0 ] && [ -z "$found" ] && [ -z "$inline" ]
