"""Honest coverage (issue 8 item 2): a figure summed over part of its owners says so where it
is printed, a sentence that turns a zero into a statement waits for every owner, and the
approval prompt lists what is missing and which standing defaults were printed.

The partial report is the example period with only the district's offices and ONE commune
in: 1 of the 10 units that report dossiers (the desk and 9 communes), 1 of the 9 communes
that report petitions. Every single-owner figure is there, so `require_complete` lets it
through: publish renders a draft, and with approval on it waits for a person who sees the
coverage in the text and in the prompt.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest

from baocao.models import RenderedReport
from baocao.periods import parse_moment
from tasks.approve import approval_prompt, coverage_notes
from tasks.consolidate import Coverage, consolidate_period, require_complete
from tasks.intake import ingest_files
from tasks.render import build_document, format_figures
from tests.conftest import PERIOD, make_runtime, open_example, returned

OFFICES = ["NV_2022-Q1.xlsx", "TP_2022-Q1.xlsx", "VHTT_2022-Q1.xlsx", "TCKH_2022-Q1_sua.xlsx"]
ONE_COMMUNE = "SON-DUNG_2022-Q1.xlsx"


def _text(doc) -> str:
    blocks = [b.text for b in doc.blocks]
    notes = ["".join(r.text for r in runs) for runs in doc.footnotes.values()]
    return "\n".join(blocks + notes)


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    rt = make_runtime(tmp_path_factory.mktemp("partial") / "data")
    open_example(rt)
    results = ingest_files(
        rt, returned(rt, [*OFFICES, ONE_COMMUNE]), now=parse_moment("2022-03-14T16:40")
    )
    assert all(r.outcome == "accepted" for r in results), results
    result = consolidate_period(rt, PERIOD)
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, dt.date(2022, 4, 5))
    return rt, result, doc


def test_coverage_counts_the_owners_that_sent(partial):
    rt, result, _ = partial
    dossiers = result.coverage["tthc_tiep_nhan"]
    assert (dossiers.units, dossiers.owners, dossiers.complete) == (1, 10, False)
    assert "MOTCUA" in dossiers.missing and "SON-DUNG" not in dossiers.missing
    assert result.coverage["tthc_pakn"].text == "1/9"
    assert result.coverage["nv_vi_pham"].complete
    require_complete(result, rt.cfg, rt.report)  # a draft can be made: singles are all in


def test_partial_sum_prints_its_coverage(partial):
    rt, result, doc = partial
    text = _text(doc)
    tiep_nhan = result.by_unit.at["SON-DUNG", "tthc_tiep_nhan"]
    assert f"đã tiếp nhận {int(tiep_nhan)} (số liệu của 1/10 đơn vị) hồ sơ" in text
    # the raw value stays a number for the texts' tests
    assert result.values["tthc_tiep_nhan"] == tiep_nhan


def test_zero_sentence_is_withheld_until_every_owner_reported(partial):
    _, result, doc = partial
    text = _text(doc)
    assert result.values["tthc_pakn"] == 0  # the one commune in had no petitions
    assert "chưa nhận được phản ánh kiến nghị nào" not in text
    assert "UBND các xã đã nhận được 0 (số liệu của 1/9 đơn vị) phản ánh, kiến nghị" in text
    # a single-owner zero is complete: its sentence stays
    assert "không có cán bộ, công chức và viên chức vi phạm" in text


def test_complete_report_has_no_coverage_note(example_runtime):
    rt = example_runtime
    result = consolidate_period(rt, PERIOD)
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, dt.date(2022, 4, 5))
    assert "số liệu của" not in _text(doc)
    assert "chưa nhận được phản ánh kiến nghị nào" in _text(doc)
    assert coverage_notes(result, rt.report, rt.cfg) == []


def test_approval_prompt_lists_what_is_missing(partial):
    rt, result, _ = partial
    notes = coverage_notes(result, rt.report, rt.cfg)
    dossiers = next(n for n in notes if "(tthc_tiep_nhan)" in n)
    assert "1/10" in dossiers and "Bộ phận Tiếp nhận và Trả kết quả huyện" in dossiers
    assert "UBND xã Sơn Dung" not in dossiers
    assert not any("(nv_vi_pham)" in n for n in notes)
    row = RenderedReport(version=1, folder="/tmp/x")
    prompt = approval_prompt(rt, row, result.completeness, result.timeliness, result=result)
    assert f"- {dossiers}" in prompt
    assert "chờ duyệt" in prompt


def test_approval_prompt_lists_a_default_printed(partial):
    rt, result, _ = partial
    blank = dataclasses.replace(
        result,
        values={**result.values, "nv_tuyen_dung": rt.report.indicator_map["nv_tuyen_dung"].default},
        coverage={**result.coverage, "nv_tuyen_dung": Coverage(0, 1, ("NV",))},
    )
    notes = coverage_notes(blank, rt.report, rt.cfg)
    default = next(n for n in notes if "(nv_tuyen_dung)" in n)
    assert default.startswith("Dùng nội dung mặc định")
    assert "UBND huyện không tổ chức tuyển dụng" in default


def test_percent_figures_honour_their_decimals(example_runtime):
    rt = example_runtime
    report = rt.report
    d = report.derived[0]
    two = report.model_copy(update={"derived": (d.model_copy(update={"decimals": 2}),)})
    assert format_figures({d.code: 47.034}, two) == {d.code: "47,03%"}
    assert format_figures({d.code: 47.034}, report) == {d.code: "47,0%"}
    partial = {"tthc_tiep_nhan": Coverage(9, 11)}
    shown = format_figures({"tthc_tiep_nhan": 1250.0}, report, partial)
    assert shown == {"tthc_tiep_nhan": "1.250 (số liệu của 9/11 đơn vị)"}
    single = format_figures({"nv_vi_pham": 0.0}, report, {"nv_vi_pham": Coverage(1, 1)})
    assert single == {"nv_vi_pham": "0"}
    assert re.fullmatch(r"\d+%", format_figures({d.code: 100}, report)[d.code])


def test_the_approver_s_mail_says_what_to_know_first(partial):
    """The approver reads the code on the phone: the late date and the missing units travel
    with it, in the text part and (escaped) in the HTML part."""
    from sqlmodel import select

    from baocao.db import session_scope
    from baocao.models import OutboxMessage
    from tasks.approve import issue_codes, late_note
    from tasks.publish import render_version

    rt, result, _ = partial
    row, _ = render_version(rt, result, dt.date(2022, 4, 5), parse_moment("2022-04-05T09:00"))
    late = late_note(rt, PERIOD, dt.date(2022, 4, 5))
    notes = [late, *coverage_notes(result, rt.report, rt.cfg)]
    keys = issue_codes(rt, row, PERIOD, parse_moment("2022-04-05T09:00"), notes=notes)
    assert len(keys) == len(rt.report.approval.approvers)
    with session_scope(rt.engine) as s:
        mails = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "approval")).all()
    for mail in mails:
        assert "Cần lưu ý trước khi duyệt" in mail.body
        assert late in mail.body and "quá hạn báo cáo 18/03/2022" in mail.body
        assert "(tthc_tiep_nhan)" in mail.body and "1/10" in mail.body
        assert "<li>Thiếu số liệu" in mail.body_html
        assert "--report cchc-quarterly" in mail.body
