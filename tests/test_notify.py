"""The outbox: exactly once per intent, failures recorded and retried, through real SMTP on
loopback and a Zalo API stand-in on loopback."""

from __future__ import annotations

import pytest
from sqlmodel import select

from baocao import crud
from baocao.config import Contact
from baocao.db import session_scope
from baocao.mailcatcher import MailCatcher, free_port
from baocao.models import OutboxMessage
from tasks.notify import deliver_outbox, messages_for
from tests.conftest import make_runtime

pytestmark = pytest.mark.integration


def _rows(key: str = "test:1", attachments=None, contacts=None):
    return messages_for(
        key=key,
        kind="request",
        period_code="2022-Q1",
        unit_code="NV",
        recipient="NV",
        contacts=contacts or [Contact(email="nv@example.vn")],
        subject="Đề nghị báo cáo Quý I/2022",
        body="Kính gửi Phòng Nội vụ",
        attachments=attachments or [],
    )


def _status(rt):
    with session_scope(rt.engine) as s:
        return {m.key: (m.status, m.attempts, m.last_error) for m in s.exec(select(OutboxMessage))}


def test_sent_once_with_attachment(tmp_path):
    rt = make_runtime(tmp_path / "data")
    form = tmp_path / "NV_2022-Q1.xlsx"
    form.write_bytes(b"PK-not-really-a-form")
    with MailCatcher(tmp_path / "mail") as mail:
        with session_scope(rt.engine) as s:
            assert len(crud.enqueue(s, messages=_rows(attachments=[str(form)]))) == 1
            assert crud.enqueue(s, messages=_rows(attachments=[str(form)])) == []
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == {"sent": 1, "failed": 0}
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == {"sent": 0, "failed": 0}
        [got] = mail.received
        assert got.rcpt == ["nv@example.vn"] and got.subject == "Đề nghị báo cáo Quý I/2022"
        assert got.attachments() == {"NV_2022-Q1.xlsx": b"PK-not-really-a-form"}
        assert got.path.suffix == ".eml" and got.path.read_bytes()


def test_failed_delivery_is_recorded_and_retried_next_run(tmp_path):
    rt = make_runtime(tmp_path / "data")
    port = free_port()
    url = f"mailto://127.0.0.1:{port}?from=baocao@example.vn&mode=insecure"
    with session_scope(rt.engine) as s:
        crud.enqueue(s, messages=_rows())
    assert deliver_outbox(rt.engine, mail_url=url) == {"sent": 0, "failed": 1}
    [(status, attempts, error)] = _status(rt).values()
    assert status == "failed" and attempts == 1 and error
    with MailCatcher(tmp_path / "mail", port=port) as mail:  # the server is back
        assert deliver_outbox(rt.engine, mail_url=url) == {"sent": 1, "failed": 0}
        assert len(mail.received) == 1
    [(status, attempts, error)] = _status(rt).values()
    assert status == "sent" and attempts == 2 and error == ""


def test_missing_attachment_is_a_failure_not_a_silent_send(tmp_path):
    rt = make_runtime(tmp_path / "data")
    with MailCatcher(tmp_path / "mail") as mail:
        with session_scope(rt.engine) as s:
            crud.enqueue(s, messages=_rows(attachments=[str(tmp_path / "gone.docx")]))
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == {"sent": 0, "failed": 1}
        assert mail.received == []
    assert "gone.docx" in next(iter(_status(rt).values()))[2]


def test_zalo_and_mail_for_one_unit_and_zalo_error_stays_pending(tmp_path, zalo_api):
    rt = make_runtime(tmp_path / "data")
    zalo_api.answer = {"error": -216, "message": "Access token is invalid"}
    contacts = [Contact(email="nv@example.vn"), Contact(url="zalo://8812345")]
    with MailCatcher(tmp_path / "mail") as mail:
        with session_scope(rt.engine) as s:
            crud.enqueue(s, messages=_rows(contacts=contacts))
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == {
            "sent": 1,
            "failed": 1,
        }  # API said -216
        status = _status(rt)
        assert status["test:1:zalo://8812345"][0] == "failed"
        assert "-216" in status["test:1:zalo://8812345"][2]
        zalo_api.answer = {"error": 0, "message": "Success", "data": {"message_id": "m1"}}
        assert deliver_outbox(rt.engine, mail_url=mail.mail_url) == {
            "sent": 1,
            "failed": 0,
        }  # only Zalo retried
        assert len(mail.received) == 1
        path, token, body = zalo_api.seen[-1]
        assert path == "/v3.0/oa/message/cs" and token == "tok-123"
        assert body["recipient"] == {"user_id": "8812345"} and "Kính gửi" in body["message"]["text"]


def test_no_mail_password_is_written_to_the_store(tmp_path):
    rt = make_runtime(tmp_path / "data")
    with session_scope(rt.engine) as s:
        crud.enqueue(
            s,
            messages=_rows(
                contacts=[Contact(email="nv@example.vn"), Contact(url="tgram://${TG_TOKEN}/12345")]
            ),
        )
    with session_scope(rt.engine) as s:
        urls = sorted(m.url for m in s.exec(select(OutboxMessage)))
    assert urls == ["email:nv@example.vn", "tgram://${TG_TOKEN}/12345"]
    secret = "mailto://baocao:S3cret@127.0.0.1:9?from=baocao@example.vn"
    assert Contact.from_stored(urls[0]).apprise_url(secret).endswith("to=nv@example.vn")


def test_everything_due_goes_in_one_call_and_no_message_is_claimed_twice(tmp_path):
    rt = make_runtime(tmp_path / "data")
    contacts = [Contact(email=f"xa{n}@example.vn") for n in range(5)]
    with session_scope(rt.engine) as s:
        crud.enqueue(s, messages=_rows(contacts=contacts))
    with session_scope(rt.engine) as s:
        first = crud.claim_due(s, limit=3)
    with session_scope(rt.engine) as s:  # a second delivery running at the same time
        second = crud.claim_due(s, limit=10)
    assert len(first) == 3 and len(second) == 2
    assert not {m.id for m in first} & {m.id for m in second}
    with session_scope(rt.engine) as s:  # both were claimed: nothing is due any more
        assert crud.claim_due(s) == []

    rt2 = make_runtime(tmp_path / "data2")
    with session_scope(rt2.engine) as s:
        crud.enqueue(s, messages=_rows(contacts=contacts))
    with MailCatcher(tmp_path / "mail") as mail:
        assert deliver_outbox(rt2.engine, mail_url=mail.mail_url, limit=2) == {
            "sent": 5,
            "failed": 0,
        }
        assert sorted(m.rcpt[0] for m in mail.received) == sorted(c.email for c in contacts)
