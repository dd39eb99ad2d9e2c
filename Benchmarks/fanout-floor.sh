#!/bin/bash
# The floor of WebSocket fan-out latency on this machine (Benchmarks/LatencyFloor/fanout.c): a C server that
# writes each event to every connection and C clients that only read, at 10 matching events/s for 10 s (the
# matching share of `herald bench ws --rate 1000 --matching 0.01`), with 1 000 and 10 000 connections,
# ROUNDS times (default 3). Compare with `herald bench ws --spawn --connections N --rate 1000 --matching 0.01`
# run at the same time: the difference is the broker's own; the floor is the machine's (a write system call
# per connection and event, loopback TCP, two cores for the server and the clients).
set -eu
ROUNDS=${ROUNDS:-3}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
"${CC:-cc}" -O2 -Wall -Werror -pthread "$(dirname "$0")/LatencyFloor/fanout.c" -o "$DIR/fanout"
ulimit -n "$(ulimit -Hn)"
for _ in $(seq "$ROUNDS"); do
    "$DIR/fanout" 1000 10 10
    "$DIR/fanout" 10000 10 10
done
