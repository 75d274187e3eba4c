"""The outbox after a kill, and a mail server that never answers.

`baocao open 2022-Q1` queues one request per unit (14) and dispatches them:
- killed right after claiming messages (`outbox.claimed`): the next run takes them back and
  sends each once;
- killed after the server accepted a message but before it was recorded (`outbox.sent`):
  the rerun sends the rest; the message in flight on each SMTP session may arrive twice,
  with the same Message-ID (counted as recognisable, not as a failure);
- a server that accepts TCP and never answers: the dispatch ends within a bounded time, the
  messages stay due (failed), and a later run with a working server sends each once.
"""

from __future__ import annotations

import time

from baocao.settings import Settings
from reliability.harness import (
    OPEN_AT,
    PERIOD,
    HangingSMTP,
    Suite,
    Tally,
    Workspace,
    count_mail,
    guarded,
    slow_sink,
    unit_addresses,
)

HANG_BOUND = 120.0  # seconds a dispatch may take against a server that never answers
RECLAIM_WAIT = 150.0  # how long reruns are tried until a killed dispatch's messages go out
# A short lease (an administrator's setting) so that "the next run" comes within seconds:
# a rerun after it has run out must take the killed run's messages back.
LEASE = {"BAOCAO_OUTBOX_LEASE_SECONDS": "5"}
PAST_LEASE = 6.0
SLOW_SECONDS = 2.0  # a slow server: each message takes this long to be accepted


def run(suite: Suite) -> list[Tally]:
    return [
        guarded(
            "outbox: kill after claiming",
            killed,
            suite,
            "outbox.claimed:1",
            "kill -9 after claiming",
        ),
        guarded(
            "outbox: kill after sending",
            killed,
            suite,
            "outbox.sent:3",
            "kill -9 after the server took message 3",
            inflight=Settings.model_fields["smtp_sessions"].default,  # one a session
        ),
        guarded("outbox: slow server, second dispatch", slow, suite),
        guarded("outbox: silent server", hanging, suite),
    ]


def _requests_once(ws: Workspace) -> None:
    """Every unit got its request; count_mail counts any that came twice."""
    t = ws.tally
    got = {r for m in ws.sink.received if "Đề nghị báo cáo" in m.subject for r in m.rcpt}
    missing = [u for u, addrs in unit_addresses().items() if not set(addrs) & got]
    t.check(not missing, f"{len(missing)} unit(s) never got their request: {missing[:4]}")


def _open(ws: Workspace, **kw):
    return ws.cli("open", PERIOD, "--as-of", OPEN_AT, **kw)


def killed(suite: Suite, fault: str, what: str, inflight: int = 0) -> Tally:
    t = Tally(f"outbox: {what}, rerun")
    started = time.monotonic()
    with Workspace(suite, "outbox-" + fault.replace(".", "-").replace(":", "-"), t) as ws:
        ws.env_extra.update(LEASE)
        _open(ws, fault=fault)
        t.note(f"{len(ws.sink.received)} message(s) arrived before the kill")
        time.sleep(PAST_LEASE)
        first = _open(ws)
        t.check(first.rc == 0, f"rerun ended with exit {first.rc}")
        unsent = ws.q("SELECT id FROM outbox_message WHERE status <> 'sent'")
        t.check(
            not unsent,
            f"the first rerun left {len(unsent)} message(s) unsent ("
            + first.out.strip()[:120]
            + ")",
        )
        waited = time.monotonic()
        while unsent and time.monotonic() - waited < RECLAIM_WAIT:
            time.sleep(10)
            _open(ws)
            unsent = ws.q("SELECT id FROM outbox_message WHERE status <> 'sent'")
        if ws.q("SELECT id FROM outbox_message WHERE status = 'sent'"):
            t.note(
                f"all sent {time.monotonic() - waited:.0f} s after the first rerun"
                if not unsent
                else f"{len(unsent)} still unsent after {RECLAIM_WAIT:.0f} s"
            )
        _requests_once(ws)
        count_mail(ws, inflight_allowed=inflight)
    t.seconds = time.monotonic() - started
    return t


def slow(suite: Suite) -> Tally:
    """A dispatch slower than its lease (renewed while it sends) and a second dispatch
    started meanwhile: the second takes nothing the first holds; each message once."""
    t = Tally(f"outbox: slow server ({SLOW_SECONDS:.0f} s a message), 2nd dispatch meanwhile")
    started = time.monotonic()
    with Workspace(suite, "outbox-slow", t, sink=slow_sink(SLOW_SECONDS)) as ws:
        ws.env_extra.update({**LEASE, "BAOCAO_SMTP_SESSIONS": "1"})
        first = ws.start("open", PERIOD, "--as-of", OPEN_AT)
        time.sleep(PAST_LEASE + 4)
        second = ws.start("open", PERIOD, "--as-of", OPEN_AT)
        a, b = first.wait(300), second.wait(300)
        t.check(a.rc == 0 and b.rc == 0, f"dispatches ended with exit {a.rc} and {b.rc}")
        t.note(f"dispatches took {a.seconds:.0f} s and {b.seconds:.0f} s")
        unsent = ws.q("SELECT id FROM outbox_message WHERE status <> 'sent'")
        if unsent:  # what the first left (e.g. a budget) goes with the next run
            _open(ws)
        _requests_once(ws)
        count_mail(ws)
    t.seconds = time.monotonic() - started
    return t


def hanging(suite: Suite) -> Tally:
    t = Tally("outbox: SMTP server that never answers, then a working one")
    started = time.monotonic()
    with Workspace(suite, "outbox-hanging", t) as ws, HangingSMTP() as hang:
        run_ = ws.cli(
            "open",
            PERIOD,
            "--as-of",
            OPEN_AT,
            env={"BAOCAO_MAIL_URL": hang.mail_url},
            timeout=HANG_BOUND + 60,
        )
        t.note(
            f"dispatch against the silent server ended after {run_.seconds:.0f} s "
            f"(exit {run_.rc}; bound {HANG_BOUND:.0f} s)"
        )
        t.check(
            run_.seconds <= HANG_BOUND and not run_.timed_out,
            f"dispatch against a silent server took {run_.seconds:.0f} s (> {HANG_BOUND:.0f} s)",
        )
        statuses = {r["status"] for r in ws.q("SELECT status FROM outbox_message")}
        t.check("sent" not in statuses, "a message marked sent though the server never answered")
        t.check(
            "sending" not in statuses or run_.timed_out,
            f"messages left 'sending' after the dispatch ended: {sorted(statuses)}",
        )
        again = ws.cli("open", PERIOD, "--as-of", OPEN_AT)
        t.check(again.rc == 0, f"the run with a working server ended with exit {again.rc}")
        unsent = ws.q("SELECT id FROM outbox_message WHERE status <> 'sent'")
        t.check(not unsent, f"{len(unsent)} message(s) not sent once the server worked")
        _requests_once(ws)
        count_mail(ws)
    t.seconds = time.monotonic() - started
    return t
