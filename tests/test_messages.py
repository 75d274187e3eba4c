"""Messages as the people who get them read them: what a real SMTP server on loopback
(aiosmtpd) received, parsed back from its .eml files with `email.policy.default`."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import select

from baocao.db import session_scope
from baocao.mailcatcher import MailCatcher
from baocao.models import OutboxMessage
from baocao.periods import Period, parse_moment
from baocao.runtime import build_runtime
from baocao.settings import get_settings
from tasks.intake import ingest_files
from tasks.messages import approval_notice, rejection_notice
from tasks.notify import deliver_outbox
from tasks.remind import queue_reminders
from tests.conftest import (
    MANIFEST,
    edited_config,
    ingest_waves,
    make_runtime,
    open_example,
    returned,
)

pytestmark = pytest.mark.integration

TCKH_FINDING = (
    "Ô E12, Tổng chi ngân sách Nhà nước: 40.898, nhưng Chi ngân sách huyện + "
    "Chi ngân sách xã = 35.107 + 5.719 = 40.826"
)
CONTACT = ("Nguyễn Thị Thu Hà", "0255 3863 125", "cchc@sontay.quangngai.gov.vn")
INTERNAL = ("tc_tong_chi", "tc_chi_nsnn", "BaoCao!", "cchc-quarterly", "(TCKH)")
ENGLISH = ("Rule ", "Cell ", "English", "Deadline", " but ", "please")
Q1 = Period.parse("2022-Q1")


def delivered(rt, folder: Path, **kw) -> list[EmailMessage]:
    """Send what is due through a real SMTP server; the .eml files it saved, parsed."""
    with MailCatcher(folder) as mail:
        deliver_outbox(rt.engine, mail_url=mail.mail_url, **kw)
        paths = [r.path for r in mail.received]
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]


def parts(m: EmailMessage) -> tuple[str, str]:
    """(text, html) as a reader gets them (the wire's CRLF read as line ends)."""
    text, html = (m.get_body((kind,)).get_content() for kind in ("plain", "html"))
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def words(html: str) -> str:
    """The HTML part's text, tags dropped and entities read."""
    import html as html_lib

    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html)))


def to(mails: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in mails if str(m["To"]) == address]


def assert_readable(text: str, html: str) -> None:
    """Lines kept, no internal code, no English, the person to ask in both parts."""
    assert len(text.splitlines()) >= 8 and text.startswith("Kính gửi: ")
    for code in INTERNAL + ENGLISH:
        assert code not in text and code not in html, code
    for piece in CONTACT:
        assert piece in text and piece in words(html)
    assert "<p>" in html and "</html>" in html


# ---- the rejection of TCKH's first version ----------------------------------------------


def test_the_rejection_reads_in_words_in_both_parts(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    delivered(rt, tmp_path / "requests")
    [r] = ingest_files(
        rt, returned(rt, ["TCKH_2022-Q1.xlsx"]), now=parse_moment("2022-03-14T16:40")
    )
    assert r.outcome == "rejected"
    [m] = delivered(rt, tmp_path / "mail")
    assert str(m["To"]) == "phongtckh@sontay.quangngai.gov.vn"
    assert "chưa hợp lệ (lần gửi 1)" in str(m["Subject"])
    text, html = parts(m)
    assert_readable(text, html)
    lines = text.splitlines()
    assert lines[0] == "Kính gửi: Phòng Tài chính - Kế hoạch,"
    assert f"  1. {TCKH_FINDING}" in lines  # the finding on its own line, exactly
    assert any('"TCKH_2022-Q1.xlsx" lúc 16:40 ngày 14/03/2022' in line for line in lines)
    assert any("trước 24 giờ ngày 16/03/2022" in line for line in lines)
    # the HTML part: the same finding as a row of a table, and the steps as a list
    assert "<table" in html and "<li>" in html
    row = re.search(r"<tr>\s*<td[^>]*>1</td>(.*?)</tr>", html, re.S).group(1)
    assert [words(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] == [
        "E12",
        "Tổng chi ngân sách Nhà nước",
        "40.898",
        "Chi ngân sách huyện + Chi ngân sách xã = 35.107 + 5.719 = 40.826",
    ]
    assert "trước 24 giờ ngày 16/03/2022" in words(html)


def test_a_late_rejection_asks_for_as_soon_as_possible_not_a_passed_day(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    delivered(rt, tmp_path / "requests")
    late = parse_moment("2022-03-18T10:00")  # the units' deadline was 24:00 of 16/03
    ingest_files(rt, returned(rt, ["TCKH_2022-Q1.xlsx"]), now=late)
    broken = tmp_path / "MOTCUA_2022-Q1.xlsx"
    broken.write_bytes(b"PK\x03\x04" + os.urandom(2000))
    ingest_files(rt, [broken], now=late)
    queue_reminders(rt, period=Q1, today=dt.date(2022, 3, 18), units=["TCKH", "MOTCUA"])
    mails = delivered(rt, tmp_path / "mail")
    kinds = sorted(str(m["Subject"]).split("] ")[1][:12] for m in mails)
    assert len(mails) == 4, kinds  # rejection, unreadable file, two reminders
    for m in mails:
        text, html = parts(m)
        assert_readable(text, html)
        assert "trước 24 giờ ngày 16/03/2022" not in text + words(html)
        assert "sớm nhất có thể" in text and "sớm nhất có thể" in words(html)
    [rejection] = [m for m in mails if "chưa hợp lệ (lần gửi 1)" in str(m["Subject"])]
    assert "Hạn gửi là 24 giờ ngày 16/03/2022 và đã qua" in parts(rejection)[0]
    [reminder] = [
        m for m in to(mails, "phongtckh@sontay.quangngai.gov.vn") if "Quá hạn" in str(m["Subject"])
    ]
    text = parts(reminder)[0]
    assert "Bản gửi lần 1 của đơn vị chưa hợp lệ (1 lỗi" in text and "1.0" not in text


# ---- escalations: one digest per recipient ----------------------------------------------


def test_one_digest_to_the_chairman_s_office_for_all_late_units(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    first = MANIFEST["arrivals"][0]  # NV, TP, VHTT, MOTCUA answer; ten units do not
    ingest_files(rt, returned(rt, first["files"]), now=parse_moment(str(first["at"])))
    delivered(rt, tmp_path / "before")
    day = dt.date(2022, 3, 22)  # 4 working days late: an escalation step
    for _ in range(2):  # the step, then a rerun the same day
        queue_reminders(rt, period=Q1, today=day, units=None)
    mails = delivered(rt, tmp_path / "mail")
    late = set(rt.cfg.expected_units(rt.report)) - {"NV", "TP", "VHTT", "MOTCUA"}
    [digest] = to(mails, "vanphong@sontay.quangngai.gov.vn")
    assert str(digest["Subject"]).endswith(
        "10 đơn vị quá hạn báo cáo công tác cải cách hành chính (CCHC) Quý I/2022"
    )
    text, html = parts(digest)
    assert_readable(text, html)
    assert text.startswith("Kính gửi: Chánh Văn phòng HĐND và UBND huyện,\n")
    assert "Văn phòng Văn phòng" not in text
    listed = [line for line in text.splitlines() if "quá hạn 4 ngày làm việc;" in line]
    assert len(listed) == 10
    for code in late:
        name = rt.cfg.unit_map[code].name
        assert sum(f". {name}: quá hạn 4 ngày làm việc; chưa gửi báo cáo" in x for x in listed) == 1
        assert f">{name}</td>" in html
    assert html.count("<tr>") == 10 and "<th" in html  # a header and one row per late unit
    # each head hears of its own unit once; each late unit gets its own reminder
    heads = [m for m in mails if str(m["To"]).startswith(("truongphong.", "chutich.", "phutrach."))]
    assert len(heads) == len(late)
    [tckh_head] = to(mails, "truongphong.tckh@sontay.quangngai.gov.vn")
    assert parts(tckh_head)[0].startswith(
        "Kính gửi: Đồng chí Đinh Công Minh, Trưởng phòng Tài chính - Kế hoạch,\n"
    )
    units = [m for m in mails if m not in heads and m is not digest]
    assert len(units) == len(late) and all("Quá hạn 4" in str(m["Subject"]) for m in units)


# ---- receipts ---------------------------------------------------------------------------


def test_a_receipt_for_every_valid_version_once_across_reruns(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    results = ingest_waves(rt)
    ingest_waves(rt)  # the same arrivals taken in again (a rerun)
    copies = []
    for path in returned(rt, ["NV_2022-Q1.xlsx", "TCKH_2022-Q1_sua.xlsx"]):
        copies.append(tmp_path / f"again {path.name}")
        copies[-1].write_bytes(path.read_bytes())
    again = ingest_files(rt, copies, now=parse_moment("2022-03-20T10:00"))
    assert [r.outcome for r in again] == ["duplicate", "duplicate"]  # the same files resent
    valid = sorted((r.unit, r.version) for r in results if r.outcome == "accepted")
    assert len(valid) == 14 and ("TCKH", 2) in valid and ("TCKH", 1) not in valid
    with session_scope(rt.engine) as s:
        keys = list(s.exec(select(OutboxMessage.key).where(OutboxMessage.kind == "receipt")))
    assert sorted((k.split(":")[3], int(k.split(":")[4][1:])) for k in keys) == valid
    mails = delivered(rt, tmp_path / "mail", kinds=["receipt", "rejection"])
    receipts = [m for m in mails if "- hợp lệ" in str(m["Subject"])]
    assert len(receipts) == 14
    tckh = to(mails, "phongtckh@sontay.quangngai.gov.vn")
    assert [str(m["Subject"]).split("] ")[1] for m in tckh] == [
        "Báo cáo Quý I/2022 của Phòng Tài chính - Kế hoạch chưa hợp lệ (lần gửi 1) - đề nghị gửi lại",
        "Đã nhận báo cáo Quý I/2022 của Phòng Tài chính - Kế hoạch (lần gửi 2) - hợp lệ",
    ]
    text, html = parts(tckh[1])
    assert_readable(text, html)
    lines = text.splitlines()
    assert any('"TCKH_2022-Q1_sua.xlsx" lúc 09:05 ngày 16/03/2022' in x for x in lines)
    for line in (
        "  - Số liệu tài chính tính đến ngày: 21/02/2022",
        "  - Tổng thu ngân sách Nhà nước: 112.108 triệu đồng",
        "  - Tổng chi ngân sách Nhà nước: 40.898 triệu đồng",
        "  - Chi ngân sách xã: 5.791 triệu đồng",
        "  - Tổng vốn đầu tư đã giải ngân: 2.266,020 triệu đồng",
    ):
        assert line in lines
    assert "gửi sau hạn" not in text
    assert "<table" in html and ">2.266,020</td>" in html and ">Chi ngân sách xã</td>" in html
    [son_mua] = to(receipts, "xasonmua@sontay.quangngai.gov.vn")
    assert "(gửi sau hạn 24 giờ ngày 16/03/2022)" in parts(son_mua)[0]
    [vhtt] = to(receipts, "phongvhtt@sontay.quangngai.gov.vn")
    assert "  - Tỷ lệ cơ quan, đơn vị sử dụng chữ ký số: 100%" in parts(vhtt)[0].splitlines()
    assert delivered(rt, tmp_path / "again", kinds=["receipt", "rejection"]) == []


# ---- languages, escaping ----------------------------------------------------------------


def test_english_follows_only_when_the_config_asks(tmp_path):
    config = edited_config(
        tmp_path / "config", "body.yaml", "languages: [vi]", "languages: [vi, en]"
    )
    rt = build_runtime(
        report_id="cchc-quarterly",
        settings=get_settings(data_dir=tmp_path / "data", config_dir=config),
    )
    open_example(rt)
    ingest_files(rt, returned(rt, ["TCKH_2022-Q1.xlsx"]), now=parse_moment("2022-03-14T16:40"))
    with session_scope(rt.engine) as s:
        [m] = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "rejection"))
    vi, _, en = m.body.partition("---- English ----")
    assert TCKH_FINDING in vi and "Cell E12" not in vi
    assert "Cell E12, Tổng chi ngân sách Nhà nước: 40.898, but its parts add up to" in en
    assert '<div lang="en">' in m.body_html


def test_the_html_part_escapes_what_a_unit_sent(tmp_path):
    rt = make_runtime(tmp_path / "data")
    notice = rejection_notice(
        rt,
        unit_code="TP",
        period=Q1,
        version=3,
        file_name='<img src=x onerror="alert(1)">.xlsx',
        received=parse_moment("2022-03-14T16:40"),
        findings=[
            {
                "severity": "error",
                "cell": "BaoCao!E9",
                "label": "<b>x</b>",
                "value": "a&b",
                "expected": "ô này cần một số",
                "message_vi": "Ô E9, <b>x</b>: a&b",
            }
        ],
        deadline=parse_moment("2022-03-17T00:00"),
    )
    assert "<img" not in notice.html and "&lt;img src=x" in notice.html
    assert "<b>x</b>" not in notice.html and "a&amp;b" in notice.html
    assert '"<img src=x onerror="alert(1)">.xlsx"' in notice.text  # the text part as sent
    assert "lần gửi 3" in notice.subject and "Ô E9, <b>x</b>: a&b" in notice.text


@pytest.mark.parametrize(
    ("key", "greeting"),
    [
        ("chu-tich", "Kính gửi: Đồng chí Nguyễn Ngọc Trân, Chủ tịch UBND huyện,"),
        ("chanh-van-phong", "Kính gửi: Chánh Văn phòng HĐND và UBND huyện,"),
    ],
)
def test_an_approver_is_greeted_once_by_title(tmp_path, key, greeting):
    rt = make_runtime(tmp_path / "data")
    notice = approval_notice(
        rt,
        key=f"approval:test:{key}",
        period=Q1,
        version=2,
        approver=rt.report.approval.approver(key),
        code="123456",
        expires=parse_moment("2022-04-08T09:00"),
        attachments=[],
        files=["report.docx"],
        completeness="14/14",
        timeliness="13/14",
    )
    assert notice.text.splitlines()[0] == greeting
    assert "123456" in notice.text and "(phiên bản 2)" in notice.subject
