#!/usr/bin/env bash
# Installs the Debian packages a make target needs, only those missing.
# Usage: scripts/deps.sh build|test|demo|bench
set -euo pipefail
# gcc-12 and g++-12: what graft-gcc and graft-g++ run (CMake finds them by these names);
# gcc-12-plugin-dev: the headers graft-gcc's policy plugin is built against (src/plugin).
build=(cmake ninja-build clang-14 llvm-14-dev libclang-rt-14-dev gcc-12 g++-12 gcc-12-plugin-dev libelf-dev libdw-dev
       libzydis-dev libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev
       libgtest-dev libbenchmark-dev zlib1g-dev libsodium-dev)
clients=(redis-tools wrk curl python3)   # python3: scripts/trial.sh (tests/trial)
case "${1:-build}" in
  build) want=("${build[@]}") ;;
  test|demo) want=("${build[@]}" "${clients[@]}") ;;
  bench) want=("${build[@]}" "${clients[@]}" gnuplot-nox hyperfine) ;;
  *) echo "deps.sh: unknown set '$1' (build, test, demo, bench)" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing missing Debian packages: ${missing[*]}"
sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
