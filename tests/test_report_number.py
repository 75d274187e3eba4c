"""The number and signing date an approval gives a report: checked, stored, stamped into the
.docx and .html that go out (not into the version's own files or its digest), named in the
message; nothing official leaves with a blank Số; a later version says what it replaces and
what changed, figure by figure; a report dated past its deadline is flagged."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from docx import Document as DocxDocument
from typer.testing import CliRunner

from baocao import vnformat
from baocao.db import session_scope
from baocao.mailcatcher import MailCatcher
from baocao.models import OutboxMessage, RenderedReport
from baocao.periods import now_vn, parse_moment
from baocao.runtime import build_runtime
from baocao.settings import get_settings
from tests.conftest import APPROVAL_ON, PERIOD, edited_config, ingest_waves, open_example

NOW = parse_moment("2022-04-05T09:00")


@pytest.fixture
def drafted(tmp_path):
    from tasks.consolidate import consolidate_period
    from tasks.publish import render_version

    config = edited_config(tmp_path / "config", *APPROVAL_ON)
    rt = build_runtime(
        report_id="cchc-quarterly",
        settings=get_settings(data_dir=tmp_path / "data", config_dir=config),
    )
    open_example(rt)
    ingest_waves(rt)
    result = consolidate_period(rt, PERIOD)
    row, _ = render_version(rt, result, dt.date(2022, 4, 5), NOW)
    return rt, result, row, config


def _codes(rt) -> dict[str, str]:
    out = {}
    with session_scope(rt.engine) as s:
        for m in s.query(OutboxMessage).filter_by(kind="approval").order_by(OutboxMessage.id):
            out[m.key.split(":")[4]] = re.search(r"ông/bà: (\d+)", m.body).group(1)
    return out


def _approve(rt, row, number="25", signed_on=dt.date(2022, 4, 5), **kw):
    from tasks.approve import decide, issue_codes

    issue_codes(rt, row, PERIOD, NOW)
    return decide(
        rt,
        row.id,
        approver="chu-tich",
        code=_codes(rt)["chu-tich"],
        approve=True,
        comment="",
        now=NOW,
        number=number,
        signed_on=signed_on,
        **kw,
    )


def test_the_number_is_checked_and_a_wrong_one_costs_no_try(drafted):
    from tasks.approve import parse_number

    rt, _, row, _ = drafted
    assert parse_number("25", "BC-UBND") == "25"
    assert parse_number(" 25/bc-ubnd ", "BC-UBND") == "25"
    for bad, words in (("25/QĐ-UBND", "ký hiệu phải là /BC-UBND"), ("abc", "không hợp lệ")):
        with pytest.raises(ValueError, match=words):
            parse_number(bad, "BC-UBND")
    blank = _approve(rt, row, number="")
    assert not blank.ok and "cần số văn bản" in blank.message
    future = _approve(rt, row, signed_on=dt.date(2022, 4, 6))
    assert not future.ok and "tương lai" in future.message
    ok = _approve(rt, row, number="25/BC-UBND")  # the same code: the refusals cost nothing
    assert ok.ok and "số 25/BC-UBND ngày 05/04/2022" in ok.message
    with session_scope(rt.engine) as s:
        stored = s.get(RenderedReport, row.id)
    assert (stored.status, stored.number, stored.signed_on) == (
        "approved",
        "25",
        dt.date(2022, 4, 5),
    )


def test_the_sent_files_carry_the_number_and_the_signing_date(drafted, tmp_path):
    from tasks.notify import deliver_outbox
    from tasks.publish import queue_report

    rt, result, row, _ = drafted
    digest = row.content_sha256
    verdict = _approve(rt, row, signed_on=dt.date(2022, 4, 4))
    assert verdict.ok
    queue_report(rt, result, verdict.row)
    with MailCatcher(tmp_path / "mail") as mail:
        deliver_outbox(rt.engine, mail_url=mail.mail_url, kinds=["report"])
        reports = list(mail.received)
    assert len(reports) == 6
    first = reports[0]
    assert "Báo cáo số 25/BC-UBND về Kết quả" in first.subject
    assert "Báo cáo số 25/BC-UBND ngày 04/04/2022" in first.text()
    attached = first.attachments()
    assert sorted(attached) == [
        "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay-Phu-luc-so-25.xlsx",
        "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay-so-25.docx",
    ]
    path = tmp_path / "sent.docx"
    path.write_bytes(attached["BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay-so-25.docx"])
    header = [c.text for r in DocxDocument(str(path)).tables[0].rows for c in r.cells]
    assert "Số: 25/BC-UBND" in header and "Sơn Tây, ngày 04 tháng 4 năm 2022" in header
    folder = Path(row.folder)
    html = (folder / "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay-so-25.html").read_text(encoding="utf-8")
    assert "Số: 25/BC-UBND" in html and "Sơn Tây, ngày 04 tháng 4 năm 2022" in html
    # the version's own files and its digest stay as rendered
    own = [
        c.text
        for r in DocxDocument(str(folder / "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay.docx"))
        .tables[0]
        .rows
        for c in r.cells
    ]
    assert "Số: 25/BC-UBND" not in own
    with session_scope(rt.engine) as s:
        assert s.get(RenderedReport, row.id).content_sha256 == digest


def test_nothing_goes_out_with_a_blank_number_unless_a_courtesy_copy(drafted, tmp_path):
    from tasks.publish import queue_report

    rt, result, row, config = drafted
    with pytest.raises(ValueError, match="Số để trống"):
        queue_report(rt, result, row)
    with session_scope(rt.engine) as s:
        assert s.query(OutboxMessage).filter_by(kind="report").count() == 0
    path = config / "reports" / "cchc-quarterly.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("  max_tries: 3", "  courtesy_copy: true\n  max_tries: 3", 1),
        encoding="utf-8",
    )
    courtesy = build_runtime(report_id="cchc-quarterly", settings=rt.settings)
    assert courtesy.report.approval.courtesy_copy
    assert len(queue_report(courtesy, result, row)) == 6
    with session_scope(rt.engine) as s:
        m = s.query(OutboxMessage).filter_by(kind="report").first()
    assert "bản gửi để biết, chưa có số văn bản" in m.body
    assert json.loads(m.attachments)[0].endswith("BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay.docx")


def test_a_version_after_dispatch_replaces_it_and_lists_the_changed_figures(drafted, tmp_path):
    from tasks.notify import deliver_outbox
    from tasks.publish import queue_report, render_version

    rt, result, row, _ = drafted
    v1 = _approve(rt, row).row
    queue_report(rt, result, v1)
    with MailCatcher(tmp_path / "mail1") as mail:
        deliver_outbox(rt.engine, mail_url=mail.mail_url, kinds=["report"])
    ind = next(
        i
        for i in rt.report.indicators
        if i.type == "integer" and i.aggregate == "sum" and result.values.get(i.code)
    )
    old = result.values[ind.code]
    corrected = dataclasses.replace(result, values={**result.values, ind.code: old + 7})
    row2, new = render_version(rt, corrected, dt.date(2022, 4, 8), NOW)
    assert new and row2.version == 2
    assert json.loads((Path(row2.folder) / "figures.json").read_text())[ind.code] == str(old + 7)
    v2 = _approve(rt, row2, number="31", signed_on=dt.date(2022, 4, 5)).row
    queue_report(rt, corrected, v2)
    with MailCatcher(tmp_path / "mail2") as mail:
        deliver_outbox(rt.engine, mail_url=mail.mail_url, kinds=["report"])
        second = list(mail.received)
    assert len(second) == 6
    sent_on = vnformat.date(now_vn().date())  # delivered just now, on the real clock
    m = second[0]
    assert "Báo cáo số 31/BC-UBND" in m.subject
    assert f"(thay thế báo cáo số 25/BC-UBND đã gửi ngày {sent_on})" in m.subject
    text = m.text()
    assert f"Báo cáo này thay thế báo cáo số 25/BC-UBND đã gửi ngày {sent_on}" in text
    fmt = vnformat.number
    line = f"{ind.label}: {fmt(Decimal(str(old)), ind.decimals, ind.pad)} → "
    line += f"{fmt(Decimal(str(old + 7)), ind.decimals, ind.pad)}"
    assert line in text, text
    changed = [ln for ln in text.splitlines() if "→" in ln]
    assert len(changed) >= 1 and all(ind.label in ln or "%" in ln for ln in changed)


def test_a_report_dated_past_its_deadline_is_flagged(drafted):
    from tasks.approve import approval_prompt, late_note

    rt, result, row, _ = drafted
    assert late_note(rt, PERIOD, dt.date(2022, 3, 18)) == ""
    late = late_note(rt, PERIOD, dt.date(2022, 4, 5))
    assert "quá hạn báo cáo 18/03/2022" in late and "18 ngày" in late
    prompt = approval_prompt(rt, row, result.completeness, result.timeliness, late)
    assert prompt.startswith("**⚠ Báo cáo đề ngày 05/04/2022, quá hạn")
    assert "số văn bản" in prompt


def test_baocao_approve_takes_the_number_and_the_date(drafted, monkeypatch):
    from app.cli import app
    from tasks.approve import issue_codes

    rt, _, row, config = drafted
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(rt.settings.data_dir))
    issue_codes(rt, row, PERIOD, now_vn())
    code = _codes(rt)["chu-tich"]
    args = ["approve", "2022-Q1", "-r", "cchc-quarterly", "--by", "chu-tich"]
    args += ["--config", str(config), "--code", code]
    blank = CliRunner().invoke(app, args)
    assert blank.exit_code == 2 and "cần số văn bản" in blank.output
    bad = CliRunner().invoke(app, [*args, "--number", "25", "--date", "31/02/2022"])
    assert bad.exit_code == 2 and "31/02/2022" in bad.output and "Traceback" not in bad.output
    good = CliRunner().invoke(app, [*args, "--number", "25/BC-UBND", "--date", "2022-04-05"])
    assert good.exit_code == 0, good.output
    assert "số 25/BC-UBND ngày 05/04/2022" in good.output
    with session_scope(rt.engine) as s:
        stored = s.get(RenderedReport, row.id)
    assert (stored.number, stored.signed_on) == ("25", dt.date(2022, 4, 5))
