"""Our SMTP client: BAOCAO_MAIL_URL, MIME messages as a mail program reads them, one session
for many messages, and bounded time against servers that refuse or never answer. Every SMTP
test talks to a real server on loopback (aiosmtpd) or a real socket that never answers."""

from __future__ import annotations

import email
import email.charset
import email.policy
import hashlib
import time

import pytest

from baocao.mailcatcher import MailCatcher, SilentServer, free_port
from baocao.mailer import (
    DEFERRED,
    FAILED,
    SENT,
    WIRE_POLICY,
    MailUrlError,
    Outgoing,
    RunControl,
    SmtpTransport,
    build_message,
    message_id_for,
    parse_mail_url,
    text_to_html,
)

BODY = (
    "Kính gửi: Phòng Nội vụ\n"
    "\n"
    "Đề nghị đơn vị gửi báo cáo Quý I/2022 trước ngày 16/03/2022.\n"
    "Biểu mẫu đính kèm; điền vào các ô màu vàng.\n"
    "\n"
    '  - Ô E12: Tổng chi <ngân sách> & "dự toán"\n'
    "Trân trọng.\n"
)


def _out(n: int = 1, *, to: str = "nv@example.vn", attachments=(), body=BODY, html=""):
    key = f"request:2022-Q1:NV:{n}"
    return Outgoing(
        id=n,
        key=key,
        address=to,
        url=f"email:{to}",
        subject="Đề nghị báo cáo Quý I/2022",
        body=body,
        body_html=html,
        attachments=tuple(attachments),
        message_id=message_id_for(key, "sontay.gov.vn"),
    )


def _send(transport, messages, control=None):
    try:
        return list(transport.send(messages, control or RunControl()))
    finally:
        transport.close()


# ---- BAOCAO_MAIL_URL ---------------------------------------------------------------------


def test_the_default_mail_url_and_apprise_forms_are_understood():
    default = parse_mail_url("mailto://localhost:25?from=baocao@localhost&mode=insecure")
    assert (default.host, default.port, default.mode, default.from_addr, default.user) == (
        "localhost",
        25,
        "insecure",
        "baocao@localhost",
        "",
    )
    s = parse_mail_url(
        "mailtos://vanthu:p%40ss@mail.sontay.gov.vn?from=vanthu+bc@sontay.gov.vn"
        "&name=UBND%20huy%E1%BB%87n%20S%C6%A1n%20T%C3%A2y"
    )
    assert (s.host, s.port, s.mode, s.user) == ("mail.sontay.gov.vn", 587, "starttls", "vanthu")
    assert s.from_addr == "vanthu+bc@sontay.gov.vn" and s.from_name == "UBND huyện Sơn Tây"
    assert s.resolved()[2] == "p@ss" and "p@ss" not in repr(s)
    assert parse_mail_url("smtps://relay.example.vn?from=a@example.vn").port == 465
    assert parse_mail_url("mailto://x?smtp=relay.vn&from=a@b.vn&mode=ssl").host == "relay.vn"


def test_a_password_from_the_environment_is_read_when_connecting(monkeypatch):
    s = parse_mail_url("mailto://baocao:${SMTP_PASS}@127.0.0.1:25?from=baocao@example.vn")
    assert s.password_template == "${SMTP_PASS}"
    monkeypatch.setenv("SMTP_PASS", "S3cret:@/")
    assert s.resolved() == ("127.0.0.1", "baocao", "S3cret:@/")
    monkeypatch.delenv("SMTP_PASS")
    with pytest.raises(MailUrlError, match="SMTP_PASS"):
        s.resolved()


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://mail.example.vn", "mailto://"),
        ("mailto://mail.example.vn?mode=tls&from=a@b.vn", "mode=tls"),
        ("mailto://mail.example.vn?from=nobody", "from=nobody"),
        ("mailto://?from=a@b.vn", "máy chủ"),
        ("mailto://mail.example.vn:abc?from=a@b.vn", "không đọc được"),
    ],
)
def test_a_mail_url_mistake_is_one_line_naming_it(url, words):
    with pytest.raises(MailUrlError) as err:
        parse_mail_url(url)
    assert words in str(err.value) and "\n" not in str(err.value)


# ---- messages ----------------------------------------------------------------------------


def test_html_from_text_keeps_paragraphs_and_lines_and_escapes():
    page = text_to_html('Dòng 1\nDòng <2>\n\n  thụt lề & "x"\n')
    assert "<p>Dòng 1<br>\nDòng &lt;2&gt;</p>" in page
    assert "<p>&nbsp;&nbsp;thụt lề &amp; &quot;x&quot;</p>" in page
    assert '<meta charset="utf-8">' in page


@pytest.mark.parametrize("eight_bit", [True, False])
def test_a_message_reads_back_with_its_lines_html_and_attachment(tmp_path, eight_bit):
    form = tmp_path / "Biểu mẫu Quý I.xlsx"
    form.write_bytes(b"PK\x03\x04 a workbook")
    csv = tmp_path / "số liệu.csv"
    csv.write_text("ma,gia_tri\nNV,7\n", encoding="utf-8")
    server = parse_mail_url("mailto://h?from=vanthu@sontay.gov.vn&name=Văn phòng HĐND-UBND")
    out = _out(attachments=[form, csv])
    raw = build_message(out, server, eight_bit=eight_bit).as_bytes(policy=WIRE_POLICY)
    assert raw.isascii() != eight_bit  # 8bit only where the server said 8BITMIME
    got = email.message_from_bytes(raw, policy=email.policy.default)
    plain = got.get_body(preferencelist=("plain",))
    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content().splitlines() == BODY.splitlines()
    page = got.get_body(preferencelist=("html",)).get_content()
    assert "<p>Kính gửi: Phòng Nội vụ</p>" in page and "&lt;ngân sách&gt; &amp;" in page
    files = {p.get_filename(): p for p in got.iter_attachments()}
    assert set(files) == {"Biểu mẫu Quý I.xlsx", "số liệu.csv"}
    assert files["Biểu mẫu Quý I.xlsx"].get_content_type() == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert files["Biểu mẫu Quý I.xlsx"].get_payload(decode=True) == b"PK\x03\x04 a workbook"
    assert files["số liệu.csv"].get_payload(decode=True) == b"ma,gia_tri\nNV,7\n"
    assert got["Message-ID"] == out.message_id
    assert got["From"].addresses[0].display_name == "Văn phòng HĐND-UBND"
    assert got["From"].addresses[0].addr_spec == "vanthu@sontay.gov.vn"
    assert got["Date"].datetime.tzinfo is not None
    assert str(got["Subject"]) == "Đề nghị báo cáo Quý I/2022"


@pytest.mark.parametrize("qp_everywhere", [False, True])
def test_a_long_vietnamese_subject_and_sender_name_keep_every_space(qp_everywhere, monkeypatch):
    if qp_everywhere:  # what importing Apprise's e-mail plugin does to the whole process
        monkeypatch.setitem(email.charset.CHARSETS, "utf-8", (email.charset.QP,) * 2 + ("utf-8",))
    subject = (
        "[UBND huyện Sơn Tây] Đề nghị báo cáo công tác cải cách hành chính (CCHC) "
        "Quý I/2022 - hạn 16/03/2022"
    )
    name = "Văn phòng Hội đồng nhân dân và Ủy ban nhân dân huyện Sơn Tây"
    server = parse_mail_url(f"mailto://h?from=a@b.vn&name={name}")
    out = Outgoing(id=1, key="k", address="a", url="email:nv@example.vn", subject=subject, body="x")
    raw = build_message(out, server).as_bytes(policy=WIRE_POLICY)
    got = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(got["Subject"]) == subject
    assert got["From"].addresses[0].display_name == name
    head = raw.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert all(len(line) <= 78 for line in head if not line.startswith(b"From:"))
    assert all(len(line) <= 998 for line in head)


def test_a_given_html_part_is_used_as_it_is():
    server = parse_mail_url("mailto://h?from=a@b.vn")
    msg = build_message(_out(html="<table><tr><td>E12</td></tr></table>"), server)
    assert msg.get_body(preferencelist=("html",)).get_content().startswith("<table>")


def test_the_message_id_is_stable_per_intent():
    assert message_id_for("request:2022-Q1:NV:a@b.vn", "b.vn") == message_id_for(
        "request:2022-Q1:NV:a@b.vn", "b.vn"
    )
    assert message_id_for("a", "b.vn") != message_id_for("b", "b.vn")
    assert message_id_for("a", "b.vn") == f"<{hashlib.sha256(b'a').hexdigest()[:32]}@b.vn>"
    assert message_id_for("a", "sơntây.vn").endswith("@xn--snty-doa75i.vn>")  # IDNA


# ---- sessions against a real server ------------------------------------------------------


@pytest.mark.integration
def test_five_hundred_messages_over_one_session(tmp_path):
    with MailCatcher(tmp_path / "mail") as mail:
        t = SmtpTransport(parse_mail_url(mail.mail_url), sessions=1)
        messages = [_out(n, to=f"xa{n}@example.vn") for n in range(1, 501)]
        results = _send(t, messages)
        assert {r.status for r in results} == {SENT} and len(results) == 500
        assert mail.connections == 1 and t.connections == 1
        assert len({r.peer for r in mail.received}) == 1
        assert sorted(r.rcpt[0] for r in mail.received) == sorted(m.to for m in messages)
        first = email.message_from_bytes(
            mail.received[0].path.read_bytes(), policy=email.policy.default
        )
        assert first["Message-ID"] == messages[0].message_id
        assert first.get_body(("plain",)).get_content().splitlines() == BODY.splitlines()


@pytest.mark.integration
def test_sessions_are_bounded_and_shared_by_the_run(tmp_path):
    with MailCatcher(tmp_path / "mail") as mail:
        t = SmtpTransport(parse_mail_url(mail.mail_url), sessions=2)
        try:
            for page in range(3):  # three batches, the same two sessions
                batch = [_out(page * 50 + n, to=f"u{page}-{n}@example.vn") for n in range(50)]
                assert {r.status for r in t.send(batch, RunControl())} == {SENT}
        finally:
            t.close()
        assert len(mail.received) == 150 and mail.connections == 2


@pytest.mark.integration
def test_a_session_the_server_dropped_is_opened_again(tmp_path):
    port = free_port()
    with MailCatcher(tmp_path / "a", port=port) as first:
        t = SmtpTransport(parse_mail_url(first.mail_url), sessions=1)
        assert [r.status for r in t.send([_out(1)], RunControl())] == [SENT]
    with MailCatcher(tmp_path / "b", port=port) as second:  # restarted: old session is dead
        assert [r.status for r in _send(t, [_out(2), _out(3)])] == [SENT, SENT]
        assert len(second.received) == 2 and t.connections == 2


@pytest.mark.integration
def test_a_refused_recipient_fails_alone_and_the_session_goes_on(tmp_path):
    with MailCatcher(tmp_path / "mail", refuse={"sai@example.vn"}) as mail:
        t = SmtpTransport(parse_mail_url(mail.mail_url), sessions=1)
        results = _send(t, [_out(1), _out(2, to="sai@example.vn"), _out(3)])
        assert [r.status for r in results] == [SENT, FAILED, SENT]
        assert "sai@example.vn" in results[1].error and "550" in results[1].error
        assert mail.connections == 1 and len(mail.received) == 2


@pytest.mark.integration
def test_a_missing_attachment_fails_that_message_only(tmp_path):
    with MailCatcher(tmp_path / "mail") as mail:
        t = SmtpTransport(parse_mail_url(mail.mail_url), sessions=1)
        results = _send(t, [_out(1, attachments=[tmp_path / "gone.docx"]), _out(2)])
        assert [r.status for r in results] == [FAILED, SENT]
        assert "gone.docx" in results[0].error and len(mail.received) == 1


@pytest.mark.integration
def test_a_server_that_never_answers_is_given_up_within_a_bounded_time():
    with SilentServer() as silent:
        t = SmtpTransport(parse_mail_url(silent.mail_url), connect_timeout=0.5, sessions=2)
        started = time.monotonic()
        results = _send(t, [_out(n) for n in range(1, 41)])
        elapsed = time.monotonic() - started
    assert {r.status for r in results} == {FAILED}
    assert all("không trả lời trong 0.5 s; sẽ thử lại ở lần chạy sau" in r.error for r in results)
    assert elapsed < 0.5 * 4  # one timeout per session, not one per message (40 × 0.5 s)


@pytest.mark.integration
def test_a_server_that_stops_answering_mid_session_is_given_up(tmp_path):
    with MailCatcher(tmp_path / "mail", delay=30) as mail:  # answers DATA after 30 s
        t = SmtpTransport(parse_mail_url(mail.mail_url), timeout=0.5, sessions=1)
        started = time.monotonic()
        results = _send(t, [_out(n) for n in range(1, 21)])
        elapsed = time.monotonic() - started
    assert {r.status for r in results} == {FAILED} and elapsed < 0.5 * 4
    assert results[0].error.startswith(t.down) and "có thể đã đến" in results[0].error
    assert "không trả lời trong 0.5 s" in t.down
    assert all(r.error == t.down for r in results[1:])  # the rest not even tried
    assert mail.connections == 1


@pytest.mark.integration
def test_a_refused_connection_fails_at_once_with_the_reason():
    t = SmtpTransport(parse_mail_url(f"mailto://127.0.0.1:{free_port()}?from=a@b.vn"))
    results = _send(t, [_out(1), _out(2), _out(3)])
    assert {r.status for r in results} == {FAILED}
    assert "không kết nối được máy chủ thư" in results[0].error and t.connections == 0


@pytest.mark.integration
def test_an_unset_password_variable_is_the_reason_of_every_failure(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_SMTP_PASS", raising=False)
    with MailCatcher(tmp_path / "mail") as mail:
        url = f"mailto://baocao:${{NO_SUCH_SMTP_PASS}}@127.0.0.1:{mail.port}?from=a@b.vn"
        results = _send(SmtpTransport(parse_mail_url(url)), [_out(1), _out(2)])
        assert {r.status for r in results} == {FAILED} and mail.connections == 0
    assert all("NO_SUCH_SMTP_PASS" in r.error for r in results)


@pytest.mark.integration
def test_out_of_time_or_lost_messages_are_not_sent(tmp_path):
    with MailCatcher(tmp_path / "mail") as mail:
        control = RunControl()
        control.lose([2])
        results = _send(SmtpTransport(parse_mail_url(mail.mail_url)), [_out(1), _out(2)], control)
        assert sorted((r.id, r.status) for r in results) == [(1, SENT), (2, DEFERRED)]
        spent = RunControl(budget_seconds=1e-9)
        results = _send(SmtpTransport(parse_mail_url(mail.mail_url)), [_out(3)], spent)
        assert [r.status for r in results] == [DEFERRED]
        assert [r.rcpt for r in mail.received] == [["nv@example.vn"]]
