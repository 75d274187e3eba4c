"""Notices: one template per kind rendered into a subject, a text and an HTML part; queued
once per intent; people named without a word twice."""

from __future__ import annotations

import pytest
from sqlmodel import select

from baocao.config import Contact
from baocao.db import session_scope
from baocao.models import OutboxMessage
from baocao.notices import NoticeKind, build_notice, position, queue_notices, tidy_text
from baocao.periods import Period
from tests.conftest import make_runtime


@pytest.mark.parametrize(
    ("title", "org", "joined"),
    [
        ("Trưởng phòng", "Phòng Nội vụ", "Trưởng phòng Nội vụ"),
        ("Chánh Văn phòng", "Văn phòng HĐND và UBND huyện", "Chánh Văn phòng HĐND và UBND huyện"),
        ("Chủ tịch UBND xã", "UBND xã Sơn Dung", "Chủ tịch UBND xã Sơn Dung"),
        (
            "Phụ trách",
            "Bộ phận Tiếp nhận và Trả kết quả huyện",
            "Phụ trách Bộ phận Tiếp nhận và Trả kết quả huyện",
        ),
        ("", "Phòng Tư pháp", "Phòng Tư pháp"),
    ],
)
def test_a_title_and_its_organisation_say_no_word_twice(title, org, joined):
    assert position(title, org) == joined


def test_tidy_text_keeps_lines_and_drops_runs_of_blank_ones():
    assert tidy_text("a  \n\n\n\n  - b\n  - c \n\n") == "a\n\n  - b\n  - c\n"


def test_every_kind_has_its_template():
    from baocao.settings import PROJECT_ROOT

    for kind in NoticeKind:
        assert (PROJECT_ROOT / "templates" / kind.template).is_file(), kind


def test_a_notice_is_queued_once_per_contact_with_both_parts(tmp_path):
    rt = make_runtime(tmp_path / "data")
    unit = rt.cfg.unit_map["NV"]
    contacts = (*unit.contacts, Contact(url="tgram://bot/123"))
    notice = build_notice(
        rt.env,
        rt.cfg,
        NoticeKind.REPORT,
        key="report:test:2022-Q1:v1:NV",
        recipient="NV",
        contacts=contacts,
        addressee="Phòng Nội vụ",
        report=rt.report,
        context={
            "period": Period.parse("2022-Q1"),
            "title": "thử",
            "files": ["report.docx"],
            "completeness": "14/14",
            "timeliness": "13/14",
        },
        period="2022-Q1",
    )
    assert notice.subject == "[UBND huyện Sơn Tây] Báo cáo thử"
    assert (
        notice.text.startswith("Kính gửi: Phòng Nội vụ,\n\n") and "  - report.docx\n" in notice.text
    )
    assert "<li>report.docx</li>" in notice.html
    with session_scope(rt.engine) as s:
        assert len(queue_notices(s, [notice])) == 2
    with session_scope(rt.engine) as s:
        assert queue_notices(s, [notice]) == []
        rows = list(s.exec(select(OutboxMessage)))
    assert {r.address for r in rows} == {"phongnoivu@sontay.quangngai.gov.vn", "tgram://bot/123"}
    assert {(r.kind, r.body, r.body_html) for r in rows} == {("report", notice.text, notice.html)}


def test_escalations_and_unreadable_files_go_with_their_day_s_kinds():
    assert NoticeKind.ESCALATION.outbox_kind == "reminder"
    assert NoticeKind.UNREADABLE.outbox_kind == "rejection"
    assert NoticeKind.RECEIPT.outbox_kind == "receipt"
