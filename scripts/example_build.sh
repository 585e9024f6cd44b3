#!/usr/bin/env bash
# Builds one version of an example server with BUILD_DIR/bin/graft-cc, once
# per content, and prints the directory that holds it.
#
#   scripts/example_build.sh SERVER VERSION BUILD_DIR
#
# The build is kept in BUILD_DIR/test-cache/examples/SERVER-HASH/VERSION,
# HASH covering the version's sources and Makefile and graft-cc, graft-c++,
# the pass plugin and graft.h; its graft build record is in the store/ beside
# it (link it into your GRAFT_STORE for graft diff). The example tests
# (tests/examples/example_test.sh) and the evolution (scripts/evolution.sh)
# share these builds; concurrent callers wait for one builder (flock), and a
# build left half-made (no "done" file) is made again.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 SERVER VERSION BUILD_DIR" >&2; exit 2; }
server=$1 version=$2
build=$(cd "$3" && pwd)
src=$(cd "$(dirname "$0")/../examples/$server/$version" && pwd)

hash=$( (cd "$src" && find . -type f | LC_ALL=C sort | xargs sha256sum
         sha256sum "$build/bin/graft-cc" "$build/bin/graft-c++" "$build/lib/graft-pass.so" \
                   "$build/include/graft/graft.h") | sha256sum | cut -c1-16)
cache=$build/test-cache/examples
entry=$cache/$server-$hash
mkdir -p "$cache"
if [ ! -e "$entry/done" ]; then
    exec {lock}>"$entry.lock"
    flock "$lock"
    if [ ! -e "$entry/done" ]; then
        rm -rf "$entry"
        mkdir -p "$entry"
        cp -r "$src" "$entry/$version"
        make -s -C "$entry/$version" clean >/dev/null
        GRAFT_STORE=$entry/store make -s -C "$entry/$version" CC="$build/bin/graft-cc" >"$entry/build.log" 2>&1 ||
            { cat "$entry/build.log" >&2; exit 1; }
        echo "$server $version" >"$entry/done.tmp"
        mv "$entry/done.tmp" "$entry/done"
    fi
    exec {lock}>&-
fi
echo "$entry/$version"
