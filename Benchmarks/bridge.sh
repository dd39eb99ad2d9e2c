#!/bin/bash
# The RabbitMQ bridge benchmark of docs/benchmarks.md. Starts a private RabbitMQ node (Debian rabbitmq-server,
# on free ports, stopped at the end) and a release herald, then measures:
#   1. live: `herald bench durable` publishes EVENTS confirmed 256-byte events while the bridge publishes
#      them to RabbitMQ; time from the start until RabbitMQ confirmed the last one;
#   2. backlog: the same number stored while no bridge runs, then a broker with `start = "earliest"`
#      drains them; time from its ready line until RabbitMQ confirmed the last one.
# RabbitMQ persists every message: `herald bridge setup` binds a quorum queue to the events.
set -euo pipefail
HERALD=${HERALD:-.build/release/herald}
EVENTS=${EVENTS:-200000}
WORK=$(mktemp -d /tmp/herald-bridge-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIST=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export HOME=$WORK RABBITMQ_NODENAME=herald-bench-$PORT@localhost RABBITMQ_NODE_PORT=$PORT RABBITMQ_DIST_PORT=$DIST \
    RABBITMQ_MNESIA_BASE=$WORK/mnesia RABBITMQ_LOG_BASE=$WORK/log RABBITMQ_LOGS=- \
    RABBITMQ_ENABLED_PLUGINS_FILE=$WORK/enabled_plugins RABBITMQ_CONFIG_FILE=$WORK/rabbitmq \
    RABBITMQ_ADVANCED_CONFIG_FILE=$WORK/advanced.config RABBITMQ_PLUGINS_EXPAND_DIR=$WORK/plugins-expand \
    RABBITMQ_PID_FILE=$WORK/pid RABBITMQ_CONF_ENV_FILE=$WORK/rabbitmq-env.conf
echo '[rabbitmq_consistent_hash_exchange].' > "$WORK/enabled_plugins"
echo 'loopback_users = none' > "$WORK/rabbitmq.conf"
/usr/lib/rabbitmq/bin/rabbitmq-server > "$WORK/rabbitmq.out" 2>&1 &
HERALD_PID=
cleanup() {
    [ -n "$HERALD_PID" ] && kill "$HERALD_PID" 2>/dev/null && wait "$HERALD_PID" 2>/dev/null || true
    /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RABBITMQ_NODENAME" stop > /dev/null 2>&1 || true
    epmd -kill > /dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
URL="amqp://guest:guest@127.0.0.1:$PORT"
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.2; done
/usr/lib/rabbitmq/bin/rabbitmqctl -n "$RABBITMQ_NODENAME" await_startup > /dev/null
"$HERALD" bridge setup --url "$URL" --group bench --partitions 1 --pattern 'bench.#' > /dev/null

# Starts herald with the bridge section $2 (empty: none) on data dir $1; sets SOCKET, HTTP, HERALD_PID.
serve() {
    { echo "data_dir = \"$1\""; echo '[http]'; echo 'listen = "127.0.0.1:0"'; echo "$2"; } > "$WORK/herald.toml"
    "$HERALD" serve --config "$WORK/herald.toml" --modules-dir "$WORK/no-modules" > "$WORK/ready" 2> "$WORK/herald.err" &
    HERALD_PID=$!
    until grep -q '^herald ready' "$WORK/ready" 2>/dev/null; do sleep 0.05; done
    SOCKET=$(sed -n 's/^herald ready socket=\([^ ]*\) .*/\1/p' "$WORK/ready")
    HTTP=$(sed -n 's/.* http=\(.*\)$/\1/p' "$WORK/ready")
}
stop() { kill "$HERALD_PID"; wait "$HERALD_PID" || true; HERALD_PID=; }
bridged() { curl -s "http://$HTTP/metrics" | awk '/^herald_bridge_published_total/ {print $2}'; }
wait_bridged() { until [ "$(bridged)" = "$1" ]; do sleep 0.01; done; }
now() { date +%s.%N; }
BRIDGE="[bridge.rabbitmq]
url = \"$URL\"
publish = [\"bench.#\"]
start = \"earliest\""

serve "$WORK/live" "$BRIDGE"
start=$(now)
"$HERALD" bench durable --socket "$SOCKET" --events "$EVENTS" --no-consume --json > "$WORK/publish.json"
wait_bridged "$EVENTS"
live=$(echo "$(now) - $start" | bc)
stop
echo "{\"bench\":\"bridge-live\",\"events\":$EVENTS,\"seconds\":$live,\"events_per_second\":$(echo "$EVENTS / $live" | bc),\"publish\":$(cat "$WORK/publish.json")}"

serve "$WORK/backlog" ""
"$HERALD" bench durable --socket "$SOCKET" --events "$EVENTS" --no-consume --json > /dev/null
stop
serve "$WORK/backlog" "$BRIDGE"
start=$(now)
wait_bridged "$EVENTS"
backlog=$(echo "$(now) - $start" | bc)
stop
echo "{\"bench\":\"bridge-backlog\",\"events\":$EVENTS,\"seconds\":$backlog,\"events_per_second\":$(echo "$EVENTS / $backlog" | bc)}"
