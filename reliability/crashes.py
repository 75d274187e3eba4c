"""Crashes: `kill -9` in the middle of an ingest of 400 returned files (the units' good forms
with small changes, so each is a distinct submission; every 7th breaks a rule and is
rejected), at each fault point in turn, then a rerun.

Expected after the rerun: every file one receipt (none left `received`) and one version; no
file lost or left in the inbox; each rejected version told to its unit once (a kill at
`outbox.sent` may resend the message in flight on each SMTP session, with its own Message-ID).
"""

from __future__ import annotations

import shutil
import time

from baocao.settings import Settings
from reliability.harness import (
    Suite,
    Tally,
    Workspace,
    check_rejections,
    count_mail,
    count_store,
)
from reliability.returns import many_returns

BATCH = 200  # files per intake batch (flows/ingest_submissions.py): some points pass once a batch
# (fault point, which pass kills: "batch" = the last batch (the second of 400 files, so half
# way), a fraction = that share of the files (points passed per file), an int = that pass)
POINTS = [
    ("ingest.archived", "batch"),
    ("ingest.read", "batch"),
    ("ingest.stored", "batch"),
    ("ingest.closed", 0.5),
    ("outbox.claimed", 1),
    ("outbox.sent", 3),
]
RERUNS = 3
# a kill after the server took a message may catch one message accepted and not yet recorded
# on each of the delivery's SMTP sessions (they send side by side)
SESSIONS = Settings.model_fields["smtp_sessions"].default
# the outbox's lease, short so the rerun comes after it ran out (a run that died holds it)
LEASE = {"BAOCAO_OUTBOX_LEASE_SECONDS": "5"}
PAST_LEASE = 6.0


def nth(spec: float | int | str, files: int) -> int:
    if spec == "batch":
        return -(-files // BATCH)
    return max(1, int(files * spec)) if isinstance(spec, float) else int(spec)


def run(suite: Suite, points: list[tuple[str, float | int | str]] | None = None) -> list[Tally]:
    count = suite.n(400, 28)
    setup = Tally("crashes: setup")
    tallies: list[Tally] = []
    with Workspace(suite, "crash-template", setup) as template:
        template.open_period()
        files = many_returns(template.tokens(), count)
    for point, spec in points or POINTS:
        t = Tally(f"crash: kill -9 at {point}, rerun ({count} files)")
        if not tallies:  # the setup's own problems show on the first line
            t.failures += setup.failures
            t.exceptions += setup.exceptions
        tallies.append(t)
        started = time.monotonic()
        with Workspace(suite, f"crash-{point.replace('.', '-')}", t) as ws:
            shutil.copytree(template.data, ws.data, dirs_exist_ok=True)
            ws.env_extra.update(LEASE)
            now = time.time() - 3600
            for i, (name, content) in enumerate(files.items()):
                ws.put(name, content, mtime=now + i)
            t.files_tried = len(files)
            fault = f"{point}:{nth(spec, count)}"
            ws.ingest(fault=fault)
            if point.startswith("outbox."):
                time.sleep(PAST_LEASE)
            runs = 0
            for runs in range(1, RERUNS + 1):
                rerun = ws.ingest()
                t.check(rerun.rc == 0, f"rerun {runs} ended with exit {rerun.rc}")
                stuck = ws.q("SELECT id FROM receipt WHERE outcome = 'received'")
                unsent = ws.q(
                    "SELECT id FROM outbox_message WHERE status <> 'sent' AND kind = 'rejection'"
                )
                if not ws.inbox_left() and not stuck and not unsent:
                    break
                time.sleep(2)
            t.check(runs == 1, f"the first rerun did not finish the work ({runs} reruns needed)")
            count_store(ws, files, expect_submission=True)
            t.check(not ws.inbox_left(), f"{len(ws.inbox_left())} file(s) left in the inbox")
            check_rejections(ws)
            count_mail(ws, inflight_allowed=SESSIONS if point == "outbox.sent" else 0)
        t.seconds = time.monotonic() - started
    return tallies
