"""The outbox: exactly once per intent under reruns, kills, slowness and hanging servers,
through real SMTP on loopback (aiosmtpd), a socket that never answers, and a Zalo API
stand-in on loopback. Kills are real: a delivery in a subprocess dies by SIGKILL at a fault
point (BAOCAO_FAULT), and a rerun finishes its work."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from sqlmodel import select

from baocao import crud
from baocao.config import Contact
from baocao.db import session_scope
from baocao.mailcatcher import MailCatcher, SilentServer, free_port
from baocao.mailer import RunControl, message_id_for
from baocao.models import OutboxMessage, utcnow
from baocao.settings import PROJECT_ROOT, get_settings
from tasks.notify import LeaseKeeper, deliver_outbox, messages_for
from tests.conftest import make_runtime

pytestmark = pytest.mark.integration

NOTHING = {"sent": 0, "failed": 0, "reclaimed": 0, "deferred": 0}
BODY = "Kính gửi Phòng Nội vụ\n\nĐề nghị gửi báo cáo Quý I/2022.\nTrân trọng.\n"


def counts(**kw) -> dict[str, int]:
    return {**NOTHING, **kw}


def _rows(key: str = "test:1", attachments=None, contacts=None):
    return messages_for(
        key=key,
        kind="request",
        period_code="2022-Q1",
        unit_code="NV",
        recipient="NV",
        contacts=contacts or [Contact(email="nv@example.vn")],
        subject="Đề nghị báo cáo Quý I/2022",
        body=BODY,
        attachments=attachments or [],
    )


def _many(n: int) -> list[dict]:
    return _rows(contacts=[Contact(email=f"xa{i:04d}@example.vn") for i in range(n)])


def _enqueue(rt, rows) -> list[str]:
    with session_scope(rt.engine) as s:
        return crud.enqueue(s, messages=rows)


def _status(rt):
    with session_scope(rt.engine) as s:
        return {m.key: (m.status, m.attempts, m.last_error) for m in s.exec(select(OutboxMessage))}


def _settings(rt, **kw):
    return rt.settings.model_copy(update=kw)


def _received_once(mail, n: int) -> None:
    got = Counter(r.rcpt[0] for r in mail.received)
    assert len(got) == n and set(got.values()) == {1}, got.most_common(3)


# ---- once per intent ---------------------------------------------------------------------


def test_sent_once_with_attachment_and_its_stored_message_id(tmp_path):
    rt = make_runtime(tmp_path / "data")
    form = tmp_path / "NV_2022-Q1.xlsx"
    form.write_bytes(b"PK-not-really-a-form")
    with MailCatcher(tmp_path / "mail") as mail:
        assert len(_enqueue(rt, _rows(attachments=[str(form)]))) == 1
        assert _enqueue(rt, _rows(attachments=[str(form)])) == []
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == counts(sent=1)
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == NOTHING
        [got] = mail.received
    assert got.rcpt == ["nv@example.vn"] and got.subject == "Đề nghị báo cáo Quý I/2022"
    assert got.attachments() == {"NV_2022-Q1.xlsx": b"PK-not-really-a-form"}
    eml = email.message_from_bytes(got.path.read_bytes(), policy=email.policy.default)
    assert eml.get_body(("plain",)).get_content().splitlines() == BODY.splitlines()
    assert "<p>Đề nghị gửi báo cáo Quý I/2022.<br>" in eml.get_body(("html",)).get_content()
    with session_scope(rt.engine) as s:
        stored = s.exec(select(OutboxMessage)).one()
    assert stored.message_id == message_id_for(stored.key, "localhost") == eml["Message-ID"]
    assert stored.status == "sent" and stored.lease_until is None


def test_failed_delivery_is_recorded_and_retried_next_run(tmp_path):
    rt = make_runtime(tmp_path / "data")
    port = free_port()
    url = f"mailto://127.0.0.1:{port}?from=baocao@example.vn&mode=insecure"
    _enqueue(rt, _rows())
    assert deliver_outbox(rt.engine, mail_url=url) == counts(failed=1)
    [(status, attempts, error)] = _status(rt).values()
    assert status == "failed" and attempts == 1 and "không kết nối được" in error
    with MailCatcher(tmp_path / "mail", port=port) as mail:  # the server is back
        assert deliver_outbox(rt.engine, mail_url=url) == counts(sent=1)
        assert len(mail.received) == 1
    [(status, attempts, error)] = _status(rt).values()
    assert status == "sent" and attempts == 2 and error == ""


def test_missing_attachment_is_a_failure_not_a_silent_send(tmp_path):
    rt = make_runtime(tmp_path / "data")
    with MailCatcher(tmp_path / "mail") as mail:
        _enqueue(rt, _rows(attachments=[str(tmp_path / "gone.docx")]))
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == counts(failed=1)
        assert mail.received == []
    assert "gone.docx" in next(iter(_status(rt).values()))[2]


def test_zalo_and_mail_for_one_unit_and_zalo_error_stays_pending(tmp_path, zalo_api):
    rt = make_runtime(tmp_path / "data")
    zalo_api.answer = {"error": -216, "message": "Access token is invalid"}
    contacts = [Contact(email="nv@example.vn"), Contact(url="zalo://8812345")]
    with MailCatcher(tmp_path / "mail") as mail:
        _enqueue(rt, _rows(contacts=contacts))
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == counts(sent=1, failed=1)
        status = _status(rt)
        assert status["test:1:zalo://8812345"][0] == "failed"
        assert "-216" in status["test:1:zalo://8812345"][2]
        zalo_api.answer = {"error": 0, "message": "Success", "data": {"message_id": "m1"}}
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == counts(sent=1)  # Zalo only
        assert len(mail.received) == 1
        path, token, body = zalo_api.seen[-1]
        assert path == "/v3.0/oa/message/cs" and token == "tok-123"
        assert body["recipient"] == {"user_id": "8812345"}
        assert "Kính gửi Phòng Nội vụ\n\nĐề nghị" in body["message"]["text"]  # lines kept


def test_an_unreachable_apprise_service_is_given_up_for_the_run(tmp_path, monkeypatch):
    rt = make_runtime(tmp_path / "data")
    monkeypatch.setenv("BAOCAO_ZALO_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("BAOCAO_ZALO_ACCESS_TOKEN", "tok-123")
    _enqueue(rt, _rows(contacts=[Contact(url=f"zalo://88{n}") for n in range(3)]))
    assert deliver_outbox(rt.engine, mail_url="mailto://127.0.0.1:9?from=a@b.vn") == counts(
        failed=3
    )
    errors = [e for _, _, e in _status(rt).values()]
    assert "unreachable" in errors[0]
    assert errors[1] == errors[2] and errors[1].startswith("zalo không trả lời")


def test_no_mail_password_is_written_to_the_store(tmp_path, monkeypatch):
    rt = make_runtime(tmp_path / "data")
    _enqueue(
        rt,
        _rows(contacts=[Contact(email="nv@example.vn"), Contact(url="tgram://${TG_TOKEN}/12345")]),
    )
    with session_scope(rt.engine) as s:
        urls = sorted(m.url for m in s.exec(select(OutboxMessage)))
    assert urls == ["email:nv@example.vn", "tgram://${TG_TOKEN}/12345"]
    monkeypatch.setenv("SMTP_PASS", "S3cret")
    with MailCatcher(tmp_path / "mail") as mail:  # no AUTH on the catcher: login is refused
        url = f"mailto://baocao:${{SMTP_PASS}}@127.0.0.1:{mail.port}?from=baocao@example.vn"
        deliver_outbox(rt.engine, mail_url=url, kinds=["request"])
    with session_scope(rt.engine) as s:
        stored = " ".join(f"{m.url} {m.last_error}" for m in s.exec(select(OutboxMessage)))
    assert "S3cret" not in stored


def test_everything_due_goes_in_one_call_and_no_message_is_claimed_twice(tmp_path):
    rt = make_runtime(tmp_path / "data")
    _enqueue(rt, _many(5))
    with session_scope(rt.engine) as s:
        first = crud.claim_due(s, claim_id="a", limit=3)
    with session_scope(rt.engine) as s:  # a second delivery running at the same time
        second = crud.claim_due(s, claim_id="b", limit=10)
    assert len(first.messages) == 3 and len(second.messages) == 2
    assert not {m.id for m in first.messages} & {m.id for m in second.messages}
    assert {m.claim_id for m in first.messages} == {"a"} and not first.reclaimed
    with session_scope(rt.engine) as s:  # both were claimed: nothing is due any more
        assert crud.claim_due(s, claim_id="c").messages == []

    rt2 = make_runtime(tmp_path / "data2")
    _enqueue(rt2, _many(5))
    with MailCatcher(tmp_path / "mail") as mail:
        assert deliver_outbox(rt2.engine, mail_url=mail.mail_url, limit=2) == counts(sent=5)
        _received_once(mail, 5)


def test_outcomes_are_recorded_only_by_the_run_that_holds_the_claim(tmp_path):
    rt = make_runtime(tmp_path / "data")
    _enqueue(rt, _many(2))
    now = utcnow()
    with session_scope(rt.engine) as s:
        ids = [m.id for m in crud.claim_due(s, claim_id="a", now=now).messages]
    later = now + crud.DEFAULT_LEASE + dt.timedelta(seconds=1)
    with session_scope(rt.engine) as s:  # run a died; run b takes its claims back
        taken = crud.claim_due(s, claim_id="b", now=later)
    assert taken.reclaimed == set(ids)
    with session_scope(rt.engine) as s:
        assert crud.record_deliveries(s, claim_id="a", sent=ids) == {
            "sent": 0,
            "failed": 0,
            "deferred": 0,
        }
        assert crud.record_deliveries(s, claim_id="b", sent=ids[:1], deferred=ids[1:]) == {
            "sent": 1,
            "failed": 0,
            "deferred": 1,
        }
    assert sorted(v[:2] for v in _status(rt).values()) == [("pending", 1), ("sent", 2)]


def test_a_claim_left_by_an_older_version_is_taken_back_after_a_lease(tmp_path):
    rt = make_runtime(tmp_path / "data")
    _enqueue(rt, _rows())
    claimed_at = utcnow()
    with session_scope(rt.engine) as s:  # what the previous code left: no claim id, no lease
        row = s.exec(select(OutboxMessage)).one()
        row.status, row.sent_at, row.attempts = "sending", claimed_at, 1
        s.add(row)
    with session_scope(rt.engine) as s:
        assert crud.claim_due(s, claim_id="a", now=claimed_at).messages == []
    with session_scope(rt.engine) as s:
        later = claimed_at + crud.DEFAULT_LEASE + dt.timedelta(seconds=1)
        assert len(crud.claim_due(s, claim_id="a", now=later).reclaimed) == 1


def test_a_run_stops_sending_what_another_run_took_back(tmp_path):
    rt = make_runtime(tmp_path / "data")
    _enqueue(rt, _many(3))
    now, lease = utcnow(), dt.timedelta(seconds=60)
    with session_scope(rt.engine) as s:
        ids = [m.id for m in crud.claim_due(s, claim_id="slow", lease=lease, now=now).messages]
    control = RunControl()
    keeper = LeaseKeeper(
        rt.engine,
        claim_id="slow",
        lease=lease,
        control=control,
        clock=lambda: now,
        logger=__import__("logging").getLogger("test"),
    )
    keeper.track(ids)
    keeper.renew()  # still all ours
    assert control.lost == set()
    with session_scope(rt.engine) as s:  # "slow" stalled past its lease: another run took two
        crud.claim_due(s, claim_id="other", now=now + 2 * lease, limit=2)
    keeper.renew()
    assert control.lost == set(ids[:2]) and control.may_send(ids[2])


# ---- bounded time ------------------------------------------------------------------------


def test_a_hanging_server_costs_one_timeout_and_its_messages_are_retried(tmp_path):
    rt = make_runtime(tmp_path / "data")
    _enqueue(rt, _many(30))
    settings = _settings(rt, smtp_connect_timeout=0.5, smtp_timeout=0.5)
    with SilentServer() as silent:
        started = time.monotonic()
        assert deliver_outbox(rt.engine, settings=settings, mail_url=silent.mail_url) == counts(
            failed=30
        )
        elapsed = time.monotonic() - started
        port = silent.port
    assert elapsed < 0.5 * 6  # a timeout per session, not 30 × 0.5 s
    errors = {e for _, _, e in _status(rt).values()}
    assert errors == {
        f"máy chủ thư 127.0.0.1:{port} không trả lời trong 0.5 s; sẽ thử lại ở lần chạy sau"
        " / the mail server did not answer within 0.5 s"
    }
    with MailCatcher(tmp_path / "mail", port=port) as mail:  # the next run, server back
        url = f"mailto://127.0.0.1:{port}?from=baocao@localhost&mode=insecure"
        assert deliver_outbox(rt.engine, settings=settings, mail_url=url) == counts(sent=30)
        _received_once(mail, 30)
    assert {v[:2] for v in _status(rt).values()} == {("sent", 2)}


def test_a_spent_time_budget_leaves_the_rest_pending_for_the_next_run(tmp_path):
    rt = make_runtime(tmp_path / "data")
    _enqueue(rt, _many(12))
    with MailCatcher(tmp_path / "mail", delay=0.1) as mail:
        settings = _settings(rt, outbox_budget_seconds=0.35, smtp_sessions=1, outbox_page_size=4)
        first = deliver_outbox(rt.engine, settings=settings, mail_url=mail.mail_url)
        assert 1 <= first["sent"] < 12 and first["failed"] == 0
        assert first["sent"] + first["deferred"] == 12
        status = _status(rt).values()
        assert Counter(s for s, _, _ in status) == {
            "sent": first["sent"],
            "pending": 12 - first["sent"],
        }
        assert {a for s, a, _ in status if s == "pending"} == {0}  # not tried, not counted
        rest = deliver_outbox(rt.engine, settings=_settings(rt), mail_url=mail.mail_url)
        assert rest == counts(sent=12 - first["sent"])
        _received_once(mail, 12)


# ---- sessions ----------------------------------------------------------------------------


def test_five_hundred_messages_over_one_smtp_session(tmp_path):
    rt = make_runtime(tmp_path / "data")
    _enqueue(rt, _many(500))
    with MailCatcher(tmp_path / "mail") as mail:
        settings = _settings(rt, smtp_sessions=1, outbox_page_size=200)  # three pages
        assert deliver_outbox(rt.engine, settings=settings, mail_url=mail.mail_url) == counts(
            sent=500
        )
        assert mail.connections == 1
        _received_once(mail, 500)
        with session_scope(rt.engine) as s:
            stored = {m.address: m.message_id for m in s.exec(select(OutboxMessage))}
        ids = {r.rcpt[0]: str(r.message["Message-ID"]) for r in mail.received}
        assert ids == stored


# ---- slow runs and concurrent runs -------------------------------------------------------


def test_a_slow_run_keeps_its_lease_and_a_concurrent_run_sends_nothing_twice(tmp_path):
    rt = make_runtime(tmp_path / "data")
    _enqueue(rt, _many(12))
    lease, delay = 0.6, 0.2  # 12 × 0.2 s over one session: the run outlasts four leases
    settings = _settings(rt, outbox_lease_seconds=lease, smtp_sessions=1)
    with MailCatcher(tmp_path / "mail", delay=delay) as mail:
        result: dict = {}
        slow = threading.Thread(
            target=lambda: result.update(
                deliver_outbox(rt.engine, settings=settings, mail_url=mail.mail_url)
            )
        )
        started = time.monotonic()
        slow.start()
        while not mail.received and slow.is_alive():  # the slow run has claimed and is sending
            time.sleep(0.01)
        others = []
        while slow.is_alive():  # other runs keep coming while the slow one sends
            others.append(deliver_outbox(rt.engine, settings=settings, mail_url=mail.mail_url))
            time.sleep(0.05)
        slow.join()
        assert time.monotonic() - started >= 12 * delay >= 4 * lease
        assert result == counts(sent=12)
        assert len(others) > 5 and all(o == NOTHING for o in others)
        _received_once(mail, 12)


# ---- killed runs -------------------------------------------------------------------------

CHILD = """
import json, sys
from baocao.db import make_engine
from baocao.settings import get_settings
from tasks.notify import deliver_outbox
settings = get_settings(data_dir=sys.argv[1], mail_url=sys.argv[2], smtp_sessions=1,
                        outbox_page_size=int(sys.argv[3]))
print(json.dumps(deliver_outbox(make_engine(settings), settings=settings)))
"""


def _delivery_in_a_process(data_dir, mail_url, fault: str, page: int = 500):
    env = {**os.environ, "BAOCAO_FAULT": fault, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(data_dir), mail_url, str(page)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_a_run_killed_after_claiming_is_finished_by_a_rerun_exactly_once(tmp_path, caplog):
    rt = make_runtime(tmp_path / "data")
    _enqueue(rt, _many(8))
    with MailCatcher(tmp_path / "mail") as mail:
        child = _delivery_in_a_process(tmp_path / "data", mail.mail_url, "outbox.claimed")
        assert child.returncode == -signal.SIGKILL, child.stderr
        assert mail.received == []
        assert {v[:2] for v in _status(rt).values()} == {("sending", 1)}
        # within the dead run's lease the messages are still its own: a rerun leaves them
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == NOTHING
        after_lease = lambda: utcnow() + crud.DEFAULT_LEASE + dt.timedelta(seconds=1)  # noqa: E731
        rerun = deliver_outbox(rt.engine, mail_url=mail.mail_url, clock=after_lease)
        assert rerun == counts(sent=8, reclaimed=8)
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url, clock=after_lease) == NOTHING
        _received_once(mail, 8)
    assert "may have reached its server once" in caplog.text
    assert {v[:2] for v in _status(rt).values()} == {("sent", 2)}


@pytest.mark.slow
def test_a_run_killed_between_acceptance_and_record_duplicates_one_message_recognisably(
    tmp_path,
):
    rt = make_runtime(tmp_path / "data")
    _enqueue(rt, _many(6))
    with MailCatcher(tmp_path / "mail") as mail:
        child = _delivery_in_a_process(tmp_path / "data", mail.mail_url, "outbox.sent:3", page=2)
        assert child.returncode == -signal.SIGKILL, child.stderr
        assert len(mail.received) == 3  # two recorded, the third accepted and not recorded
        after_lease = lambda: utcnow() + crud.DEFAULT_LEASE + dt.timedelta(seconds=1)  # noqa: E731
        rerun = deliver_outbox(rt.engine, mail_url=mail.mail_url, clock=after_lease)
        assert rerun == counts(sent=4, reclaimed=2)  # the third and fourth, the rest pending
        by_rcpt = Counter(r.rcpt[0] for r in mail.received)
        assert len(by_rcpt) == 6 and sorted(by_rcpt.values()) == [1, 1, 1, 1, 1, 2]
        [twice] = [a for a, n in by_rcpt.items() if n == 2]
        ids = {str(r.message["Message-ID"]) for r in mail.received if r.rcpt[0] == twice}
        assert len(ids) == 1  # the duplicate carries the same Message-ID: recognisable


# ---- PostgreSQL --------------------------------------------------------------------------


@pytest.fixture
def pg_runtime(tmp_path):
    """A runtime on the machine's PostgreSQL, in a schema of its own dropped afterwards."""
    import uuid

    import psycopg

    from baocao.runtime import build_runtime

    try:
        admin = psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="test", connect_timeout=5, autocommit=True
        )
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    schema = f"baocao_test_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
        rt = build_runtime(
            settings=get_settings(
                data_dir=tmp_path / "data",
                database_url=url,
                config_dir=PROJECT_ROOT / "config",
            )
        )
        try:
            yield rt
        finally:
            rt.engine.dispose()
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_on_postgres_two_runs_at_once_take_back_a_dead_claim_and_send_each_once(
    pg_runtime, tmp_path
):
    rt = pg_runtime
    _enqueue(rt, _many(40))
    with session_scope(rt.engine) as s:  # a run that claimed ten and died
        dead = crud.claim_due(s, claim_id="dead", limit=10)
    assert len(dead.messages) == 10
    after_lease = lambda: utcnow() + crud.DEFAULT_LEASE + dt.timedelta(seconds=1)  # noqa: E731
    settings = _settings(rt, outbox_page_size=5, smtp_sessions=1)
    results: list[dict] = []
    with MailCatcher(tmp_path / "mail", delay=0.01) as mail:
        runs = [
            threading.Thread(
                target=lambda: results.append(
                    deliver_outbox(
                        rt.engine, settings=settings, mail_url=mail.mail_url, clock=after_lease
                    )
                )
            )
            for _ in range(2)
        ]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        _received_once(mail, 40)
    assert sum(r["sent"] for r in results) == 40 and sum(r["reclaimed"] for r in results) == 10
    assert {v[0] for v in _status(rt).values()} == {"sent"}


def test_an_address_that_keeps_failing_is_given_up_after_the_attempts_allowed(tmp_path):
    rt = make_runtime(tmp_path / "data")
    url = f"mailto://127.0.0.1:{free_port()}?from=baocao@example.vn&mode=insecure"
    _enqueue(rt, _rows())
    settings = _settings(rt, outbox_max_attempts=2)
    for _ in range(2):
        assert deliver_outbox(rt.engine, settings=settings, mail_url=url) == counts(failed=1)
    assert deliver_outbox(rt.engine, settings=settings, mail_url=url) == counts()  # not again
    [(status, attempts, _)] = _status(rt).values()
    assert (status, attempts) == ("failed", 2)


def test_a_one_time_code_is_not_kept_once_sent(tmp_path):
    rt = make_runtime(tmp_path / "data")
    rows = [{**r, "kind": "approval", "body": "Mã phê duyệt: 493817"} for r in _rows()]
    _enqueue(rt, rows)
    with MailCatcher(tmp_path / "mail") as mail:
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == counts(sent=1)
        [got] = mail.received
    assert "493817" in got.message.get_body(("plain",)).get_content()
    with session_scope(rt.engine) as s:
        [row] = s.exec(select(OutboxMessage))
    assert "493817" not in row.body and "493817" not in row.body_html
