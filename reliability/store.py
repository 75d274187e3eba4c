"""A store that is gone or broken: after `baocao open` has initialised it and mailed the
units, the SQLite file is deleted (or overwritten with garbage). `baocao open` and
`baocao remind` must then refuse with one line naming what to check, never recreate an empty
store and mail everyone again, and never print a traceback.
"""

from __future__ import annotations

import os
import time

from reliability.harness import OPEN_AT, PERIOD, Suite, Tally, Workspace

COMMANDS = [
    ("open", PERIOD, "--as-of", OPEN_AT),
    ("remind", PERIOD, "--as-of", "2022-03-11T08:00"),  # a reminder step (3 working days before)
]


def run(suite: Suite) -> list[Tally]:
    return [broken(suite, "deleted"), broken(suite, "corrupt")]


def _break(ws: Workspace, how: str) -> None:
    for suffix in ("-wal", "-shm"):
        side = ws.sqlite_file.with_name(ws.sqlite_file.name + suffix)
        if side.exists():
            side.unlink()
    if how == "deleted":
        ws.sqlite_file.unlink()
    else:
        ws.sqlite_file.write_bytes(
            b"not a database, a clerk's copy went wrong\n" + os.urandom(65536)
        )


def broken(suite: Suite, how: str) -> Tally:
    t = Tally(f"store: SQLite file {how}, then open and remind")
    started = time.monotonic()
    with Workspace(suite, f"store-{how}", t) as ws:
        ws.open_period()
        before = len(ws.sink.received)
        t.check(before == 14, f"{before} requests mailed at opening, expected 14")
        _break(ws, how)
        for args in COMMANDS:
            run_ = ws.cli(*args)
            verb = f"`baocao {args[0]}` on a {how} store"
            t.check(run_.rc not in (0, None), f"{verb} succeeded (exit {run_.rc})")
            lines = run_.user_lines()
            t.check(
                1 <= len(lines) <= 2,
                f"{verb}: {len(lines)} line(s) of explanation, expected one: {lines[:3]}",
            )
            if lines:
                t.note(f"{args[0]} on a {how} store said: {lines[0][:160]}")
        after = len(ws.sink.received)
        t.check(after == before, f"{after - before} message(s) sent again from a {how} store")
        if how == "deleted":
            t.check(
                not ws.sqlite_file.exists() or ws.sqlite_file.stat().st_size == 0,
                "an empty store was created in place of the deleted one",
            )
    t.seconds = time.monotonic() - started
    return t
