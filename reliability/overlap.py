"""Overlapping runs: two `baocao ingest` started a second apart on the same inbox of 150
returned files (as two schedulers, or a scheduler and a clerk, would), on SQLite and on the
PostgreSQL of this machine (a schema of its own).

Expected: both end cleanly; every file one receipt and one version; none lost or left in the
inbox; each rejection mailed once.
"""

from __future__ import annotations

import time

from reliability.harness import (
    Suite,
    Tally,
    Workspace,
    check_rejections,
    count_mail,
    count_store,
)
from reliability.returns import many_returns

GAP_SECONDS = 1.0


def run(suite: Suite) -> list[Tally]:
    return [one(suite, postgres=False), one(suite, postgres=True)]


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
