"""Overlapping runs: two `baocao ingest` started a second apart on the same inbox of 150
returned files (as two schedulers, or a scheduler and a clerk, would), on SQLite and on the
PostgreSQL of this machine (a schema of its own).

Expected: both end cleanly; every file one receipt and one version; none lost or left in the
inbox; each rejection mailed once.
"""

from __future__ import annotations

import threading
import time

from reliability.harness import (
    Suite,
    Tally,
    Workspace,
    check_rejections,
    count_mail,
    count_store,
    guarded,
)
from reliability.returns import many_returns

GAP_SECONDS = 1.0


ARRIVAL_SECONDS = 8.0  # the arriving files are dropped over this long
SETTLE_WAIT = 7.0  # past the inbox's settle time (5 s), so a last run takes the latest files


def run(suite: Suite) -> list[Tally]:
    return [
        guarded("overlap: SQLite", one, suite, postgres=False),
        guarded("overlap: PostgreSQL", one, suite, postgres=True),
        guarded("overlap: while files arrive", arriving, suite),
    ]


def arriving(suite: Suite) -> Tally:
    """Two ingests started a second apart while files are still being dropped into the inbox
    (a sync tool copying with their original times, so none waits to settle): each file is
    claimed by one run or left for the next, and one more run takes what came last."""
    count = suite.n(150, 150)
    t = Tally(f"overlap: 2 ingests 1 s apart, {count} files arriving meanwhile, SQLite")
    started = time.monotonic()
    with Workspace(suite, "overlap-arriving", t) as ws:
        ws.open_period()
        files = many_returns(ws.tokens(), count)
        t.files_tried = len(files)
        items = list(files.items())

        def drop() -> None:
            for name, content in items:
                ws.put(name, content, mtime=time.time() - 3600)
                time.sleep(ARRIVAL_SECONDS / len(items))

        dropper = threading.Thread(target=drop, daemon=True)
        dropper.start()
        first = ws.start("ingest", "--as-of", "2022-03-11T10:15")
        time.sleep(GAP_SECONDS)
        second = ws.start("ingest", "--as-of", "2022-03-11T10:16")
        a, b = first.wait(600), second.wait(600)
        dropper.join(timeout=60)
        time.sleep(SETTLE_WAIT)
        last = ws.ingest(as_of="2022-03-11T10:20")
        for name, r in (("first", a), ("second", b), ("last", last)):
            t.check(r.rc == 0, f"{name} ingest ended with exit {r.rc}")
        took = [sum(".xlsx" in line for line in r.out.splitlines()) for r in (a, b, last)]
        t.note(f"the runs listed {took[0]}, {took[1]} and {took[2]} file(s)")
        count_store(ws, files, expect_submission=True)
        t.check(not ws.inbox_left(), f"{len(ws.inbox_left())} file(s) left in the inbox")
        check_rejections(ws)
        count_mail(ws)
    t.seconds = time.monotonic() - started
    return t


def one(suite: Suite, *, postgres: bool) -> Tally:
    count = suite.n(150, 150)  # fewer would let the first run finish before the second looks
    store = "PostgreSQL" if postgres else "SQLite"
    t = Tally(f"overlap: 2 ingests 1 s apart, {count} files, {store}")
    started = time.monotonic()
    if postgres and suite.pg_error:
        t.failures.append(f"PostgreSQL at 127.0.0.1:5432 not reachable: {suite.pg_error}")
        return t
    with Workspace(suite, f"overlap-{store.lower()}", t, postgres=postgres) as ws:
        ws.open_period()
        files = many_returns(ws.tokens(), count)
        now = time.time() - 3600
        for i, (name, content) in enumerate(files.items()):
            ws.put(name, content, mtime=now + i)
        t.files_tried = len(files)
        first = ws.start("ingest", "--as-of", "2022-03-11T10:15")
        time.sleep(GAP_SECONDS)
        second = ws.start("ingest", "--as-of", "2022-03-11T10:16")
        a, b = first.wait(600), second.wait(600)
        t.check(a.rc == 0, f"first ingest ended with exit {a.rc}: {(a.user_lines() or [''])[-1]}")
        t.check(b.rc == 0, f"second ingest ended with exit {b.rc}: {(b.user_lines() or [''])[-1]}")
        took = [sum(".xlsx" in line for line in r.out.splitlines()) for r in (a, b)]
        t.note(
            f"ingests took {a.seconds:.1f} s and {b.seconds:.1f} s; they listed {took[0]} and "
            f"{took[1]} file(s)"
        )
        count_store(ws, files, expect_submission=True)
        t.check(not ws.inbox_left(), f"{len(ws.inbox_left())} file(s) left in the inbox")
        check_rejections(ws)
        count_mail(ws)
    t.seconds = time.monotonic() - started
    return t
