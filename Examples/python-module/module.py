#!/usr/bin/env python3
"""A Herald module in Python, using only the standard library (socket + json).

It says hello, subscribes to new blocks, prints each one, and publishes `example.block_seen` for it
(PROTOCOL.md §2). It answers the broker's heartbeat pings, and stops on SIGTERM/SIGINT or after --count
blocks.

    HERALD_SOCKET=./herald-data/herald.sock python3 Examples/python-module/module.py
"""

import argparse
import json
import os
import signal
import socket
import struct
import sys


class Connection:
    """One connection to the broker: length-prefixed JSON frames in both directions."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buffer = b""
        self.next_id = 0
        # Frames that came while a request waited for its reply (a ping may come before `welcome`).
        self.pending = []

    def send(self, message):
        body = json.dumps(message, separators=(",", ":")).encode()
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def request(self, message):
        """Sends a request with a fresh id and returns its reply; events that arrive first are kept."""
        self.next_id += 1
        message["id"] = self.next_id
        self.send(message)
        early = []
        while True:
            frame = self.receive()
            if frame is None:
                raise ConnectionError("the broker closed the connection")
            if frame.get("id") == self.next_id:
                if frame["op"] == "error":
                    raise RuntimeError(f'{frame["code"]}: {frame["message"]}')
                self.pending.extend(early)
                return frame
            early.append(frame)

    def receive(self):
        """The next frame, or None when the broker closed the connection."""
        while len(self.buffer) < 4 or len(self.buffer) < 4 + struct.unpack(">I", self.buffer[:4])[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        length = struct.unpack(">I", self.buffer[:4])[0]
        frame, self.buffer = self.buffer[4 : 4 + length], self.buffer[4 + length :]
        return json.loads(frame)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", default=os.environ.get("HERALD_SOCKET", "./herald-data/herald.sock"))
    parser.add_argument("--count", type=int, default=0, help="stop after this many blocks (0: never)")
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    broker = Connection(arguments.socket)
    hello = {"op": "hello", "protocol": 1, "module": {"name": os.environ.get("HERALD_MODULE_NAME", "example-python"), "version": "1.0.0"}}
    if os.environ.get("HERALD_TOKEN"):
        hello["token"] = os.environ["HERALD_TOKEN"]
    welcome = broker.request(hello)
    print(f'connected as session {welcome["session"]}', flush=True)
    broker.request({"op": "subscribe", "topics": ["block.new.#"]})

    seen = 0
    frames = broker.pending
    while True:
        frame = frames.pop(0) if frames else broker.receive()
        if frame is None:
            print("the broker closed the connection", file=sys.stderr)
            return 1
        if frame["op"] == "ping":
            broker.send({"op": "pong"})
        elif frame["op"] == "event":
            event = frame["event"]
            # Any JSON value may be a payload (PROTOCOL.md §1): only an object has a block_number.
            payload = event.get("payload")
            number = payload.get("block_number") if isinstance(payload, dict) else None
            print(f'block {number} on chain {event.get("chain_id")} ({event["event_id"]})', flush=True)
            seen_event = {
                "event_type": "example.block_seen",
                "payload": {"block_event_id": event["event_id"], "block_number": number},
            }
            if "chain_id" in event:
                seen_event["chain_id"] = event["chain_id"]
            broker.send({"op": "publish", "event": seen_event})
            seen += 1
            if arguments.count and seen >= arguments.count:
                broker.request({"op": "bye"})
                return 0
        elif frame["op"] == "error":
            print(f'broker error: {frame["code"]}: {frame["message"]}', file=sys.stderr)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
    except (RuntimeError, OSError) as error:
        # A refused hello or subscribe (unauthorized, forbidden), or the connection lost: one line, status 1.
        print(f"example module: {error}", file=sys.stderr)
        sys.exit(1)
