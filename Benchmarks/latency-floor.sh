#!/bin/bash
# The floor of publish -> deliver latency on this machine (Benchmarks/LatencyFloor/relay.c): a C relay that
# only forwards bytes, with one and with two relay threads, at 10 000 messages/s, ROUNDS times (default 3).
# Compare with `herald bench pubsub --spawn --latency --rate 10000` run at the same time: the difference is
# the broker's own; the floor is the machine's (its scheduler, its virtual CPUs' wake-ups).
set -eu
ROUNDS=${ROUNDS:-3}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
"${CC:-cc}" -O2 -Wall -Werror -pthread "$(dirname "$0")/LatencyFloor/relay.c" -o "$DIR/relay"
for _ in $(seq "$ROUNDS"); do
    "$DIR/relay" 1 10000 50000
    "$DIR/relay" 2 10000 50000
done
