"""A local SMTP sink for the benchmarks: aiosmtpd in its own process (so it takes no CPU time
from the process measured in its interpreter lock), counting messages and connections and
writing nothing."""

from __future__ import annotations

import json
import subprocess
import sys

SINK = r"""
import asyncio, json, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
state = {"messages": 0, "connections": 0}
class Handler:
    async def handle_DATA(self, server, session, envelope):
        state["messages"] += 1
        return "250 OK"
class Counting(Controller):
    def factory(self):
        state["connections"] += 1
        return SMTP(self.handler, **self.SMTP_kwargs)
c = Counting(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
state["connections"] = 0
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "count":
        print(json.dumps(state), flush=True)
        state.update(messages=0, connections=0)
"""


class Sink:
    """The sink on `port`; `count()` returns (and resets) what it received since last asked."""

    def __init__(self, port: int):
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SINK, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def count(self) -> dict:
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
