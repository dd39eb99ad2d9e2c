#!/bin/bash
# What a `batch` round's syncs cost on this machine's disk (Benchmarks/SyncFloor/syncs.c): 4 KiB written to
# each of eight preallocated files, then synced in turn, from 1/2/4/8 threads at once, with one `syncfs`, or
# only one file (what a write-ahead file would sync). ROUNDS (default 500) rounds each, in DIR (default a
# temporary directory under the current one: the disk the log would use).
set -eu
ROUNDS=${ROUNDS:-500}
DIR=${DIR:-$(mktemp -d ./.sync-floor-XXXXXX)}
trap 'rm -rf "$DIR"' EXIT
"${CC:-cc}" -O2 -Wall -Werror -pthread "$(dirname "$0")/SyncFloor/syncs.c" -o "$DIR/syncs"
"$DIR/syncs" "$DIR" serial "$ROUNDS"
for threads in 1 2 4 8; do "$DIR/syncs" "$DIR" threads "$threads" "$ROUNDS"; done
"$DIR/syncs" "$DIR" syncfs "$ROUNDS"
"$DIR/syncs" "$DIR" one "$ROUNDS"
