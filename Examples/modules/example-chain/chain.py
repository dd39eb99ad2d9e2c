#!/usr/bin/env python3
"""A stand-in for a chain node: says hello and ready, then publishes block.new for chain 138 every
BLOCK_INTERVAL_SECONDS, answering the broker's heartbeat pings. Runs under the supervisor (make run)."""

import json
import os
import select
import socket
import struct
import time

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(os.environ["HERALD_SOCKET"])


def send(message):
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)


buffer = b""


def frames():
    """Every whole frame received so far."""
    global buffer
    chunk = sock.recv(65536)
    if not chunk:
        raise SystemExit(0)
    buffer += chunk
    while len(buffer) >= 4 and len(buffer) >= 4 + struct.unpack(">I", buffer[:4])[0]:
        length = struct.unpack(">I", buffer[:4])[0]
        yield json.loads(buffer[4:4 + length])
        buffer = buffer[4 + length:]


hello = {"op": "hello", "id": 1, "protocol": 1, "module": {"name": os.environ["HERALD_MODULE_NAME"], "version": "1.0.0"}}
if os.environ.get("HERALD_TOKEN"):
    hello["token"] = os.environ["HERALD_TOKEN"]
send(hello)
send({"op": "ready", "id": 2})
interval = float(os.environ.get("BLOCK_INTERVAL_SECONDS", "2"))
number = 1
next_block = time.monotonic() + interval
while True:
    ready, _, _ = select.select([sock], [], [], max(0, next_block - time.monotonic()))
    if ready:
        for frame in frames():
            if frame.get("op") == "ping":
                send({"op": "pong"})
            elif frame.get("op") == "error":
                # The broker is shutting down: nothing more to publish.
                if frame.get("code") == "shutting_down":
                    raise SystemExit(0)
                print("broker error:", frame, flush=True)
    if time.monotonic() >= next_block:
        payload = {"block_number": number, "hash": "0x%064x" % number, "transaction_count": number % 50}
        send({"op": "publish", "event": {"event_type": "block.new", "chain_id": 138, "payload": payload}})
        print("published block", number, flush=True)
        number += 1
        next_block += interval
