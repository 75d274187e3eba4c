"""Fault injection for the reliability suite: `checkpoint("ingest.stored")` kills this process
with SIGKILL when BAOCAO_FAULT names that point, so a crash lands exactly where a test
wants it (`BAOCAO_FAULT=ingest.stored:3` kills at the third time the point is passed).

Without BAOCAO_FAULT set this is a dictionary look-up and nothing else.
"""

from __future__ import annotations

import os
import signal

_passed: dict[str, int] = {}


def checkpoint(point: str) -> None:
    """Die here, as `kill -9` would, if the environment asks for a fault at `point`."""
    spec = os.environ.get("BAOCAO_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _passed[point] = _passed.get(point, 0) + 1
    if _passed[point] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
