#!/bin/bash
# The broker's CPU per event, by thread, from /proc: throughput on this shared two-core machine moves by
# ±30 % from run to run, but what one event costs the broker moves less, and says where the cost is.
# Starts `herald serve` (the default configuration, or nothing stored with `nopersist`), warms it with
# 100 000 events, then reads each thread's CPU time around `herald bench pubsub --events EVENTS` (1→1).
# Usage: Benchmarks/broker-cpu.sh [EVENTS] [nopersist]; HERALD names the binary (.build/release/herald),
# STALLED adds that many subscribers that never read (`--stalled`) to the measured run.
set -eu
HERALD=${HERALD:-.build/release/herald}
EVENTS=${1:-1000000}
DIR=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
if [ "${2:-}" = nopersist ]; then printf '[log]\npersist = []\n' > "$DIR/herald.toml"; else : > "$DIR/herald.toml"; fi
"$HERALD" serve --config "$DIR/herald.toml" --data-dir "$DIR/data" --socket "$DIR/herald.sock" > "$DIR/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -S "$DIR/herald.sock" ] && break; sleep 0.1; done
"$HERALD" bench pubsub --socket "$DIR/herald.sock" --json --events 100000 > /dev/null
# Clock ticks of user and system time per thread name (event loops, the log's writer thread, …).
ticks() {
    for task in /proc/"$PID"/task/*; do
        fields=($(sed 's/^.*) //' "$task/stat"))
        echo "$(tr ' ' '_' < "$task/comm") $((fields[11] + fields[12]))"
    done | awk '{sum[$1] += $2} END {for (name in sum) print name, sum[name]}' | sort
}
ticks > "$DIR/before"
RATE=$("$HERALD" bench pubsub --socket "$DIR/herald.sock" --json --events "$EVENTS" --stalled "${STALLED:-0}" |
    sed 's/.*"events_per_second":\([0-9]*\).*/\1/')
ticks > "$DIR/after"
HZ=$(getconf CLK_TCK)
join "$DIR/before" "$DIR/after" | awk -v events="$EVENTS" -v hz="$HZ" -v rate="$RATE" '
    { us = ($3 - $2) * 1000000 / hz / events; total += us; if (us >= 0.01) printf "%s %.2f µs  ", $1, us }
    END { printf "| broker %.2f µs of CPU per event, %d events/s\n", total, rate }'
