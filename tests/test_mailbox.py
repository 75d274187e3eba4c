"""Replies taken from the office's mailbox: a real Dovecot on loopback (the session's
`imap_server`), messages delivered into it with IMAP APPEND, the example's real forms."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import os
import subprocess
import sys
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from types import SimpleNamespace

import pytest
from sqlmodel import select

from baocao.db import session_scope
from baocao.mailcatcher import MailCatcher
from baocao.models import Finding, OutboxMessage, Receipt, Submission
from baocao.periods import parse_moment
from baocao.runtime import build_runtime
from baocao.settings import PROJECT_ROOT, get_settings
from tasks.mailbox import (
    Account,
    Mailbox,
    MailboxError,
    _automatic,
    imap_utf7,
    parse_imap_url,
    read_letter,
    take_mailbox,
)
from tasks.notify import deliver_outbox
from tests.conftest import open_example, returned

NOW = parse_moment("2022-03-14T10:00")
AFTER = parse_moment("2022-03-18T10:00")  # past the units' deadline (16/03/2022)
NV = "phongnoivu@sontay.quangngai.gov.vn"
SON_DUNG = "xasondung@sontay.quangngai.gov.vn"
OFFICE = "vanphong@sontay.quangngai.gov.vn"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PROCESSED = "baocao-processed"


def mail(sender: str, *files, subject="Re: [UBND huyện Sơn Tây] Đề nghị báo cáo", msgid=None):
    """A reply as a clerk's mail program writes it; files are (name, bytes, type)."""
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "baocao@sontay.quangngai.gov.vn"
    m["Subject"] = subject
    m["Date"] = format_datetime(NOW)
    m["Message-ID"] = msgid or make_msgid(domain="sontay.quangngai.gov.vn")
    m.set_content("Kính gửi Văn phòng,\n\nĐơn vị gửi báo cáo đính kèm.\n")
    for name, data, ctype in files:
        maintype, subtype = ctype.split("/")
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return m


def form(rt, name: str) -> tuple[str, bytes, str]:
    [path] = returned(rt, [name])
    return (path.name, path.read_bytes(), XLSX)


@pytest.fixture
def office(mailbox, tmp_path):
    """The example period opened in a fresh store, reading a fresh mailbox."""
    rt = build_runtime(report_id="cchc-quarterly", settings=mailbox.settings(tmp_path / "data"))
    open_example(rt)
    yield SimpleNamespace(rt=rt, box=mailbox)
    rt.engine.dispose()


def receipts(rt) -> list[Receipt]:
    with session_scope(rt.engine) as s:
        return list(s.exec(select(Receipt).order_by(Receipt.id)))


def submissions(rt, unit: str) -> list[Submission]:
    with session_scope(rt.engine) as s:
        return list(s.exec(select(Submission).where(Submission.unit_code == unit)))


def answers(rt) -> list[OutboxMessage]:
    with session_scope(rt.engine) as s:
        stmt = select(OutboxMessage).where(OutboxMessage.key.like("nothing-usable:%"))
        return list(s.exec(stmt))


# ---- settings, names, messages (no server) ------------------------------------------------


def test_the_mailbox_address_is_read_from_one_url():
    a = parse_imap_url("imaps://baocao@sontay.gov.vn@mail.sontay.gov.vn/INBOX")
    assert (a.host, a.port, a.mode, a.user, a.folder) == (
        "mail.sontay.gov.vn",
        993,
        "ssl",
        "baocao@sontay.gov.vn",
        "INBOX",
    )
    a = parse_imap_url("imap://van%20phong@10.0.0.5/B%C3%A1o%20c%C3%A1o", processed="Đã xử lý")
    assert (a.port, a.mode, a.user, a.folder, a.processed) == (
        143,
        "starttls",
        "van phong",
        "Báo cáo",
        "Đã xử lý",
    )
    a = parse_imap_url("imap://u@127.0.0.1:1143?mode=insecure&verify=no")
    assert (a.port, a.mode, a.folder, a.verify) == (1143, "insecure", "INBOX", False)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("imaps://u:hunter2@mail.x/INBOX", "BAOCAO_IMAP_PASSWORD"),
        ("pop3://u@mail.x/", "imaps://"),
        ("imaps://mail.x/INBOX", "người dùng"),
        ("imap://u@mail.x/?mode=tls", "mode=tls"),
        ("imaps://u@mail.x/baocao-processed", "trùng"),
    ],
)
def test_a_wrong_mailbox_url_is_one_clear_line(url, says):
    with pytest.raises(MailboxError, match=says) as err:
        parse_imap_url(url)
    assert "\n" not in str(err.value) and "hunter2" not in str(err.value)


def _utf7_decode(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "&":
            end = text.index("-", i)
            chunk = text[i + 1 : end]
            if chunk:
                b64 = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
                out.append(base64.b64decode(b64).decode("utf-16-be"))
            else:
                out.append("&")
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize("name", ["Đã xử lý", "baocao-processed", "A&B", "Hộp thư/Đã nhận"])
def test_folder_names_are_written_in_imap_utf7(name):
    encoded = imap_utf7(name)
    assert encoded.isascii() and _utf7_decode(encoded) == name


def test_a_message_and_each_attachment_are_archived_verbatim_and_named(tmp_path):
    outer = mail(NV, ("Báo cáo quý 1 của phòng.xlsx", b"PK-form", XLSX), msgid="<m1@nv>")
    forwarded = mail(SON_DUNG, ("SON-DUNG_2022-Q1.csv", b"don_vi,gia_tri\n", "text/csv"))
    outer.add_attachment(forwarded)  # a forwarded message: its attachment is taken too
    outer.add_attachment(b"GIF89a", maintype="image", subtype="gif", disposition="inline")
    outer.add_attachment(b"\x00raw", maintype="application", subtype="octet-stream")
    outer.add_attachment(b"x,y\n", maintype="text", subtype="csv", filename="../../etc/x.csv")
    outer.add_attachment(b"a,b\n", maintype="text", subtype="csv", filename="placeholder.csv")
    raw = outer.as_bytes(policy=email.policy.SMTP)
    # an encoded-word inside quotes, as some mailers name files
    raw = raw.replace(
        b'filename="placeholder.csv"',
        b'filename="=?utf-8?b?' + base64.b64encode("Sơn Dung.csv".encode()) + b'?="',
    )
    archive = tmp_path / "archive"
    letter = read_letter(raw, 7, archive)
    sha = hashlib.sha256(raw).hexdigest()
    assert letter.eml == archive / sha[:2] / f"{sha}.eml" and letter.eml.read_bytes() == raw
    assert (letter.sender, letter.key, letter.uid) == (NV, "<m1@nv>", 7)
    names = [a.name for a in letter.arrivals]
    assert names == [
        "Báo cáo quý 1 của phòng.xlsx",
        "SON-DUNG_2022-Q1.csv",
        "tep-dinh-kem-3.bin",
        "x.csv",
        "Sơn Dung.csv",
    ]
    contents = [b"PK-form", b"don_vi,gia_tri\n", b"\x00raw", b"x,y\n", b"a,b\n"]
    for arrival, content in zip(letter.arrivals, contents, strict=True):
        digest = hashlib.sha256(content).hexdigest()
        assert arrival.path.read_bytes() == content
        assert arrival.path.parent == archive / digest[:2]
        assert (arrival.source, arrival.sender) == ("mail", NV)
        assert arrival.key.startswith("mail:<m1@nv>:")
    assert [a.key for a in read_letter(raw, 8, archive).arrivals] == [
        a.key for a in letter.arrivals
    ]  # the same message read again: the same arrivals
    assert len(set(names)) == len({a.key for a in letter.arrivals})


def test_a_message_without_message_id_is_known_by_its_content(tmp_path):
    m = mail(NV)
    del m["Message-ID"]
    raw = m.as_bytes()
    letter = read_letter(raw, 1, tmp_path)
    assert letter.key == f"sha256:{hashlib.sha256(raw).hexdigest()}" and letter.arrivals == []


@pytest.mark.parametrize(
    ("header", "value", "automatic"),
    [
        ("Auto-Submitted", "auto-replied", True),
        ("Auto-Submitted", "no", False),
        ("Precedence", "bulk", True),
        ("List-Id", "<cchc.sontay>", True),
        ("X-Autoreply", "yes", True),
        ("Return-Path", "<>", True),
        ("X-Mailer", "Outlook", False),
    ],
)
def test_automatic_messages_are_recognised(header, value, automatic):
    m = mail(NV)
    m[header] = value
    assert bool(_automatic(m, NV, {"baocao@sontay.quangngai.gov.vn"})) is automatic


def test_bounces_and_our_own_messages_are_automatic():
    own = {"baocao@sontay.quangngai.gov.vn"}
    assert _automatic(mail("MAILER-DAEMON@mail.x"), "mailer-daemon@mail.x", own)
    assert _automatic(mail(NV), "baocao@sontay.quangngai.gov.vn", own)
    report = mail(NV)
    report.set_type("multipart/report")
    assert _automatic(report, NV, own)


# ---- against the real server ----------------------------------------------------------------


@pytest.mark.integration
def test_a_reply_with_a_form_is_taken_in_then_moved(office):
    rt = office.rt
    reply = mail(f"Phòng Nội vụ <{NV.upper()}>", form(rt, "NV_2022-Q1.xlsx"), msgid="<nv1@x>")
    office.box.deliver(reply)
    run = take_mailbox(rt, now=NOW)
    [r] = run.results
    assert (r["file"], r["outcome"], r["unit"], r["version"], r["source"], r["sender"]) == (
        "NV_2022-Q1.xlsx",
        "accepted",
        "NV",
        1,
        "mail",
        NV,
    )
    [receipt] = receipts(rt)
    assert (receipt.source, receipt.sender, receipt.outcome) == ("mail", NV, "accepted")
    assert receipt.arrival_key.startswith("mail:<nv1@x>:1:")
    [sub] = submissions(rt, "NV")
    assert sub.credential == "token" and sub.receipt_id == receipt.id
    # the message as it was in the mailbox, and the form as attached, both in the archive
    [raw] = office.box.messages(PROCESSED)
    sha = hashlib.sha256(raw).hexdigest()
    assert (rt.settings.archive_dir / sha[:2] / f"{sha}.eml").read_bytes() == raw
    assert receipt.sha256 == hashlib.sha256(form(rt, "NV_2022-Q1.xlsx")[1]).hexdigest()
    assert office.box.messages() == [] and run.moved == 1
    assert answers(rt) == []  # a usable form is not answered here


@pytest.mark.integration
def test_a_pdf_or_a_photo_gets_one_answer_saying_what_is_needed(office, tmp_path):
    rt = office.rt
    pdf = mail(
        SON_DUNG,
        ("bao cao quy 1.pdf", b"%PDF-1.4 scanned", "application/pdf"),
        subject="TL: Re: [UBND huyện Sơn Tây] Đề nghị báo cáo",
        msgid="<pdf1@sd>",
    )
    office.box.deliver(pdf)
    run = take_mailbox(rt, now=NOW)
    assert [(r["file"], r["outcome"]) for r in run.results] == [("bao cao quy 1.pdf", "refused")]
    [answer] = answers(rt)
    assert (answer.address, answer.kind, answer.unit_code) == (SON_DUNG, "rejection", "SON-DUNG")
    assert answer.subject == "Re: [UBND huyện Sơn Tây] Đề nghị báo cáo"
    for words in ("bao cao quy 1.pdf", ".xlsx", ".csv", "SON-DUNG_2022-Q1.xlsx", "16/03/2022"):
        assert words in answer.body, words
    assert "cchc@sontay.quangngai.gov.vn" in answer.body  # whom to ask: the contact person
    # the message went through the real SMTP server, with the unit's own form attached
    with MailCatcher(tmp_path / "smtp") as smtp:
        sent = deliver_outbox(
            rt.engine, settings=rt.settings, mail_url=smtp.mail_url, kinds=["rejection"]
        )
    assert sent["sent"] == 1
    [got] = smtp.received
    assert got.rcpt == [SON_DUNG] and "biểu mẫu Excel (.xlsx)" in got.text()
    [(name, content)] = got.attachments().items()
    assert name == "SON-DUNG_2022-Q1.xlsx" and content[:2] == b"PK"
    # the same message again (a copy left in the mailbox): no second answer
    office.box.deliver(pdf)
    take_mailbox(rt, now=NOW)
    assert len(answers(rt)) == 1
    assert office.box.messages() == [] and len(office.box.messages(PROCESSED)) == 2
    # a photo after the deadline: answered without asking for a day that has passed
    office.box.deliver(mail(SON_DUNG, ("IMG_2031.jpg", b"\xff\xd8\xff", "image/jpeg")))
    take_mailbox(rt, now=AFTER)
    photo = next(a for a in answers(rt) if "IMG_2031.jpg" in a.body)
    assert "ảnh chụp" in photo.body and "đã qua" in photo.body


@pytest.mark.integration
def test_only_registered_people_are_answered(office):
    rt = office.rt
    box = office.box
    box.deliver(mail("ai.do@gmail.com", ("anh.png", b"\x89PNG", "image/png")))  # unknown
    box.deliver(mail(NV, subject="Bản sao"))  # no attachment, from a unit
    box.deliver(mail(OFFICE, subject="Hỏi"))  # no attachment, from the chairman's office
    auto = mail(NV, subject="Tự động trả lời: vắng mặt")
    auto["Auto-Submitted"] = "auto-replied"
    box.deliver(auto)
    run = take_mailbox(rt, now=NOW)
    assert run.unknown == ["ai.do@gmail.com"]
    assert sorted(a.address for a in answers(rt)) == [NV, OFFICE]
    nv = next(a for a in answers(rt) if a.address == NV)
    assert "không có tệp đính kèm" in nv.body and nv.subject == "Re: Bản sao"
    assert "Kính gửi: Phòng Nội vụ," in nv.body and "NV_2022-Q1.xlsx" in nv.body
    office_answer = next(a for a in answers(rt) if a.address == OFFICE)
    assert "Kính gửi: Văn phòng HĐND và UBND huyện," in office_answer.body
    assert office_answer.attachments == "[]"  # an office has no form of its own
    rows = {row["subject"]: row["answered"] for row in run.letters}
    assert rows["Tự động trả lời: vắng mặt"].startswith("không: thư tự động")
    assert "unknown sender" in rows["Re: [UBND huyện Sơn Tây] Đề nghị báo cáo"]
    assert box.messages() == [] and len(box.messages(PROCESSED)) == 4
    assert [r["outcome"] for r in run.results].count("refused") == 4


@pytest.mark.integration
def test_a_form_of_one_unit_from_another_units_address_is_a_finding(office, tmp_path):
    rt = office.rt
    office.box.deliver(mail(NV, form(rt, "TP_2022-Q1.xlsx")))  # TP's form, NV's address
    [r] = take_mailbox(rt, now=NOW).results
    assert (r["outcome"], r["unit"], r["warnings"]) == ("accepted", "TP", 1)
    assert "gửi từ địa chỉ" in r["message"] and NV in r["message"]
    assert submissions(rt, "NV") == []  # never NV's figures
    [sub] = submissions(rt, "TP")
    assert sub.credential == "token"  # the form code rules
    [receipt] = receipts(rt)
    assert receipt.unit_code == "TP" and NV in receipt.message
    with session_scope(rt.engine) as s:
        [finding] = s.exec(select(Finding).where(Finding.rule == "sender"))
    assert (finding.severity, finding.unit_code, finding.receipt_id, finding.submission_id) == (
        "warning",
        "TP",
        receipt.id,
        sub.id,
    )
    # figures naming TP without TP's form code, from NV's address: refused, nothing changes
    rows = "\n".join(f"TP,2022-Q1,{code},1" for code in ("tp_vb_ban_hanh", "tp_vb_ra_soat"))
    csv = ("tp.csv", f"don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\n{rows}\n".encode(), "text/csv")
    office.box.deliver(mail(NV, csv))
    [r] = take_mailbox(rt, now=NOW).results
    assert r["outcome"] == "unauthorized" and len(submissions(rt, "TP")) == 1


@pytest.mark.integration
def test_the_same_message_seen_twice_is_one_version(office):
    rt = office.rt
    reply = mail(NV, form(rt, "NV_2022-Q1.xlsx"), msgid="<twice@nv>")
    office.box.deliver(reply)
    office.box.deliver(reply)  # two copies at once
    run = take_mailbox(rt, now=NOW)
    assert [r["outcome"] for r in run.results] == ["accepted"] and run.moved == 2
    office.box.deliver(reply)  # and once more, later (moved back, or delivered again)
    [again] = take_mailbox(rt, now=NOW).results
    assert again["outcome"] == "accepted" and "lần chạy trước" in again["message"]
    assert len(submissions(rt, "NV")) == 1 and len(receipts(rt)) == 1
    assert office.box.messages() == [] and len(office.box.messages(PROCESSED)) == 3
    # the same form in a new message (the clerk sent it again): a duplicate, no new version
    office.box.deliver(mail(NV, form(rt, "NV_2022-Q1.xlsx")))
    [dup] = take_mailbox(rt, now=NOW).results
    assert dup["outcome"] == "duplicate" and len(submissions(rt, "NV")) == 1


@pytest.mark.integration
def test_a_file_whose_reader_fails_keeps_its_message_for_the_next_run(office, monkeypatch):
    rt = office.rt
    name, content, ctype = form(rt, "TP_2022-Q1.xlsx")
    office.box.deliver(mail(NV, form(rt, "NV_2022-Q1.xlsx")))
    office.box.deliver(mail("phongtuphap@sontay.quangngai.gov.vn", (name, content, ctype)))
    monkeypatch.setenv("BAOCAO_READER_TEST_CRASH_ON", f"{hashlib.sha256(content).hexdigest()}.xlsx")
    run = take_mailbox(rt, now=NOW)
    assert sorted(r["outcome"] for r in run.results) == ["accepted", "retry"]
    assert (run.moved, run.left) == (1, 1) and len(office.box.messages()) == 1
    monkeypatch.delenv("BAOCAO_READER_TEST_CRASH_ON")
    [r] = take_mailbox(rt, now=NOW).results
    assert (r["outcome"], r["unit"]) == ("accepted", "TP") and office.box.messages() == []


@pytest.mark.integration
def test_without_move_the_message_is_copied_and_only_it_expunged(office):
    rt = office.rt
    office.box.deliver(mail(NV, form(rt, "NV_2022-Q1.xlsx")))
    c = office.box.server.client(office.box.user, office.box.password)
    c.append("INBOX", r"(\Deleted)", None, mail(NV, subject="xóa bởi người dùng").as_bytes())
    c.logout()
    account = parse_imap_url(office.box.url, processed="Đã xử lý")
    with Mailbox(account, office.box.password, use_move=False) as box:
        uids = box.waiting(10)
        assert len(uids) == 1  # the user's deleted message is not ours to take
        box.move(uids)
        assert box.created_processed
    assert len(office.box.messages("Đã xử lý")) == 1
    [left] = office.box.messages()  # EXPUNGE took only our message
    assert "xóa bởi người dùng" in str(
        email.message_from_bytes(left, policy=email.policy.default)["Subject"]
    )


@pytest.mark.integration
def test_a_mailbox_that_cannot_be_used_is_one_line(office, imap_server):
    rt = office.rt
    with pytest.raises(MailboxError, match=f"từ chối đăng nhập của {office.box.user}") as err:
        take_mailbox(rt, now=NOW, password="wrong password")
    assert "wrong password" not in str(err.value)
    missing = Account("127.0.0.1", imap_server.port, "insecure", office.box.user, "Không có")
    with pytest.raises(MailboxError, match="Không có"):
        Mailbox(missing, office.box.password).open()
    closed = Account("127.0.0.1", 9, "insecure", "x", timeout=5)
    with pytest.raises(MailboxError, match="127.0.0.1:9"):
        Mailbox(closed, "x").open()
    starttls = Account("127.0.0.1", imap_server.port, "starttls", "x", timeout=5)
    with pytest.raises(MailboxError, match="STARTTLS"):
        Mailbox(starttls, "x").open()


# ---- a crash between archive, commit and move ------------------------------------------------

RUN_ONCE = """
import sys
from pathlib import Path
from baocao.periods import parse_moment
from baocao.runtime import build_runtime
from baocao.settings import PROJECT_ROOT, get_settings
from tasks.mailbox import take_mailbox
settings = get_settings(data_dir=Path(sys.argv[1]), config_dir=PROJECT_ROOT / "config")
run = take_mailbox(build_runtime(report_id="cchc-quarterly", settings=settings), now=parse_moment("2022-03-14T10:00"))
print(",".join(r["outcome"] for r in run.results), run.moved)
"""


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("point", ["mailbox.archived", "ingest.stored", "mailbox.ingested"])
def test_killed_between_archive_and_move_a_rerun_makes_no_second_version(office, point):
    rt = office.rt
    office.box.deliver(mail(NV, form(rt, "NV_2022-Q1.xlsx")))
    office.box.deliver(mail(SON_DUNG, ("scan.pdf", b"%PDF-1.4", "application/pdf")))
    env = {
        **os.environ,
        "BAOCAO_IMAP_URL": office.box.url,
        "BAOCAO_IMAP_PASSWORD": office.box.password,
        "BAOCAO_FAULT": point,
    }

    def run():
        return subprocess.run(
            [sys.executable, "-c", RUN_ONCE, str(rt.settings.data_dir)],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )

    killed = run()
    assert killed.returncode == -9, killed.stderr
    assert len(office.box.messages()) == 2  # nothing moved before it was committed
    assert len(list(rt.settings.archive_dir.rglob("*.eml"))) == 2  # archived before read
    env.pop("BAOCAO_FAULT")
    rerun = run()
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.split() == ["accepted,refused", "2"]
    assert len(submissions(rt, "NV")) == 1
    assert [r.outcome for r in receipts(rt)] == ["accepted", "refused"]
    assert len(answers(rt)) == 1
    assert office.box.messages() == [] and len(office.box.messages(PROCESSED)) == 2


# ---- the password from a Prefect Secret block ------------------------------------------------


@pytest.mark.slow
def test_the_password_may_come_from_a_prefect_secret(prefect_harness):
    from prefect.blocks.system import Secret

    from tasks.mailbox import imap_password

    Secret(value="s3cret-from-block").save("imap-password", overwrite=True)
    settings = get_settings(imap_url="imaps://u@mail.x/INBOX")
    assert imap_password(settings) == "s3cret-from-block"
    with_env = get_settings(imap_url="imaps://u@mail.x/INBOX", imap_password="from-env")
    assert imap_password(with_env) == "from-env"
    missing = get_settings(imap_password_secret="no-such-block")
    with pytest.raises(MailboxError, match="no-such-block"):
        imap_password(missing)


# ---- the flow: the mailbox and the folder, a step each --------------------------------------


@pytest.mark.slow
@pytest.mark.integration
def test_the_ingest_flow_reads_the_mailbox_and_the_folder(
    prefect_harness, mailbox, tmp_path, monkeypatch
):
    from flows.ingest_submissions import ingest_submissions

    data = tmp_path / "data"
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(data))
    monkeypatch.setenv("BAOCAO_IMAP_URL", mailbox.url)
    monkeypatch.setenv("BAOCAO_IMAP_PASSWORD", mailbox.password)
    rt = build_runtime(report_id="cchc-quarterly", settings=get_settings())
    open_example(rt)
    mailbox.deliver(mail(NV, form(rt, "NV_2022-Q1.xlsx")))
    [tp] = returned(rt, ["TP_2022-Q1.xlsx"])
    (data / "inbox").mkdir()
    (data / "inbox" / tp.name).write_bytes(tp.read_bytes())
    os.utime(data / "inbox" / tp.name, (0, 0))  # settled long ago
    with MailCatcher(tmp_path / "smtp") as smtp:
        monkeypatch.setenv("BAOCAO_MAIL_URL", smtp.mail_url)
        rows = ingest_submissions(as_of="2022-03-14T10:00")
        assert sorted((r["source"], r["unit"], r["outcome"]) for r in rows) == [
            ("folder", "TP", "accepted"),
            ("mail", "NV", "accepted"),
        ]
        assert mailbox.messages() == [] and (data / "inbox" / "processed").is_dir()
        # the mailbox refuses the password: the folder is still taken in, the run fails in one line
        monkeypatch.setenv("BAOCAO_IMAP_PASSWORD", "wrong")
        [son_dung] = returned(rt, ["SON-DUNG_2022-Q1.xlsx"])
        (data / "inbox" / son_dung.name).write_bytes(son_dung.read_bytes())
        os.utime(data / "inbox" / son_dung.name, (0, 0))
        with pytest.raises(MailboxError, match="từ chối đăng nhập"):
            ingest_submissions(as_of="2022-03-14T11:00")
    assert [s.version for s in submissions(rt, "SON-DUNG")] == [1]
    rt.engine.dispose()


# ---- the demo's mailbox ----------------------------------------------------------------------


def test_the_demo_goes_on_without_dovecot(monkeypatch):
    import app.demo as demo

    monkeypatch.setattr(demo, "dovecot_binary", lambda: None)
    said: list[str] = []
    with demo.office_mailbox(said.append) as imap:
        assert imap is None and "BAOCAO_IMAP_URL" not in os.environ
    assert "dovecot" in said[0] and "thư mục tiếp nhận" in said[0]


@pytest.mark.integration
def test_the_demo_mailbox_is_set_for_its_runs_and_forgotten_after(imap_server):
    from app.demo import office_mailbox

    with office_mailbox() as imap:
        held = get_settings()  # what the ingest runs of this process read
        assert held.imap_url == imap.url
        assert held.imap_password.get_secret_value() == imap.password
        assert "BAOCAO_IMAP_URL" not in os.environ  # handed over, not written to the environment
        folder = imap.folder
        assert folder.is_dir()
    assert get_settings().imap_url is None
    assert not folder.exists()  # the server stopped and its files went with it


@pytest.mark.integration
def test_a_connection_dropped_while_the_run_worked_is_opened_again(office):
    import socket

    rt = office.rt
    office.box.deliver(mail(NV, form(rt, "NV_2022-Q1.xlsx")))
    with Mailbox(parse_imap_url(office.box.url), office.box.password) as box:
        [uid] = box.waiting(10)
        first = box.conn
        first.sock.shutdown(socket.SHUT_RDWR)  # the server logged the idle session out
        assert box.fetch(uid).startswith(b"From:") and box.conn is not first
        second = box.conn
        second.sock.shutdown(socket.SHUT_RDWR)
        box.move([uid])
        assert box.conn is not second
    assert office.box.messages() == [] and len(office.box.messages(PROCESSED)) == 1
