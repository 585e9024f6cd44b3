#!/usr/bin/env bash
# Builds one version of an example server with graft-cc (once per content,
# shared with the evolution: scripts/example_build.sh), and runs the server's
# own functional test with its real clients.
# Usage: example_test.sh SERVER VERSION BIN_DIR
set -euo pipefail
server=$1 version=$2 bin=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$("$root/scripts/example_build.sh" "$server" "$version" "$bin/..")
"$root/examples/$server/test.sh" "$dir"
