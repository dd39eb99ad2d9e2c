#!/bin/sh
# The broker benchmark of docs/benchmarks.md: `herald bench pubsub` against a spawned broker, 256-byte
# payloads, the issue's four targets. Each line is one JSON result. Run by `make bench` after a release build.
set -eu
HERALD=${HERALD:-.build/release/herald}
EVENTS=${EVENTS:-2000000}
ROUNDS=${ROUNDS:-3}
for round in $(seq "$ROUNDS"); do
    "$HERALD" bench pubsub --spawn --json --subscribers 1 --events "$EVENTS"
    "$HERALD" bench pubsub --spawn --json --subscribers 4 --events "$EVENTS"
    "$HERALD" bench pubsub --spawn --json --subscribers 1 --stalled 1 --events "$EVENTS"
    "$HERALD" bench pubsub --spawn --json --subscribers 1 --latency --rate 10000 --events 100000
done
