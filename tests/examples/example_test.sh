#!/usr/bin/env bash
# Builds one version of an example server with graft-cc, in a scratch copy,
# and runs the server's own functional test with its real clients.
# Usage: example_test.sh SERVER VERSION BIN_DIR
set -euo pipefail
server=$1 version=$2 bin=$3
src=$(cd "$(dirname "$0")/../../examples/$server" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/graft-example-XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$src/$version" "$work/$version"
export GRAFT_STORE=$work/store
make -s -C "$work/$version" clean >/dev/null
make -s -C "$work/$version" CC="$bin/graft-cc" >/dev/null
"$src/test.sh" "$work/$version"
