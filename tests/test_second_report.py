"""The second bundled report (tcd-monthly, tháng 3/2022) beside the CCHC one: both load, its
cycle gives the example's figures, and a unit late on both is reminded once, of both."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlmodel import select

from baocao.config import load_config
from baocao.db import session_scope
from baocao.models import OutboxMessage
from baocao.periods import Period, end_of_day, parse_moment
from baocao.settings import PROJECT_ROOT
from tasks.collect import open_period, period_dates
from tasks.consolidate import consolidate_period
from tasks.intake import ingest_files
from tasks.remind import queue_reminders
from tasks.render import build_document, write_report
from tests.conftest import MANIFEST, PERIOD, make_runtime, returned

TCD = next(r for r in MANIFEST["also"] if r["report"] == "tcd-monthly")
MONTH = Period.parse(str(TCD["period"]))
COMMUNES = ["SON-DUNG", "SON-BUA", "SON-LAP", "SON-LIEN", "SON-LONG", "SON-MAU", "SON-MUA"]


def test_both_reports_load_with_their_own_units_schedule_and_recipients():
    cfg = load_config(PROJECT_ROOT / "config")
    cchc, tcd = cfg.report("cchc-quarterly"), cfg.report("tcd-monthly")
    assert (cchc.period_kind, tcd.period_kind) == ("Q", "M")
    tcd_units, cchc_units = cfg.expected_units(tcd), cfg.expected_units(cchc)
    assert tcd_units[0] == "TTRA" and len(tcd_units) == 10
    assert "TTRA" not in cchc_units and len(cchc_units) == 14  # the CCHC report is unchanged
    assert set(tcd_units) & set(cchc_units) == set(cfg.resolve_owners(("@communes",)))
    assert [r.label for r in tcd.recipients][:2] == ["Thanh tra tỉnh", "Ban Tiếp công dân tỉnh"]
    month, quarter = period_dates(MONTH, tcd.schedule), period_dates(PERIOD, cchc.schedule)
    assert (month.window_start, month.window_end) == (dt.date(2022, 2, 15), dt.date(2022, 3, 14))
    assert month.open_day == dt.date(2022, 3, 9) and quarter.open_day == dt.date(2022, 3, 7)
    assert month.unit_deadline == end_of_day(dt.date(2022, 3, 15))
    assert quarter.unit_deadline == end_of_day(dt.date(2022, 3, 16))
    assert month.report_deadline == end_of_day(dt.date(2022, 3, 18))


def _tcd_files() -> list[str]:
    return [n for wave in MANIFEST["arrivals"] for n in wave.get("tcd-monthly", [])]


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """tháng 3/2022 of tcd-monthly opened on its day and every return taken in."""
    rt = make_runtime(tmp_path_factory.mktemp("tcd") / "data", report="tcd-monthly")
    opened = open_period(rt, period=MONTH, units=None, now=parse_moment(str(TCD["open_at"])))
    results = []
    for wave in MANIFEST["arrivals"]:
        paths = returned(rt, wave.get("tcd-monthly", []), MONTH)
        results += ingest_files(rt, paths, now=parse_moment(str(wave["at"])))
    yield rt, opened, results
    rt.engine.dispose()


def test_a_tcd_cycle_gives_the_examples_figures(month, tmp_path):
    rt, opened, results = month
    assert opened["new_requests"] == 10
    assert [r.outcome for r in results] == ["accepted"] * len(_tcd_files())
    late = {r.unit for r in results if r.late}
    assert late == {"SON-TAN", "SON-TINH", "SON-MUA"}  # due 15/03
    result = consolidate_period(rt, MONTH)
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, dt.date(2022, 3, 18))
    paths = write_report(
        rt.env, doc, result, rt.report, tmp_path, rt.cfg.body, dt.date(2022, 3, 18)
    )
    md = next(p for p in paths if p.suffix == ".md").read_text(encoding="utf-8")
    assert next(p for p in paths if p.suffix == ".docx").name == (
        "BC-TCD-thang-3-2022-UBND-huyen-Son-Tay.docx"
    )
    for text in (
        "tháng 3/2022",
        "toàn huyện đã tiếp 33 lượt với 42 người, về 24 vụ việc",
        "tiếp thường xuyên 20 lượt, lãnh đạo tiếp định kỳ 11 lượt và đột xuất 2 lượt",
        "trong kỳ không có đoàn đông người",
        "Tổng số đơn tiếp nhận trong kỳ: 18 đơn; số đơn đủ điều kiện xử lý: 14 đơn, gồm 3 đơn "
        "khiếu nại, 1 đơn tố cáo và 10 đơn kiến nghị, phản ánh",
        "thẩm quyền giải quyết: 10 đơn",
        "đã giải quyết 2/3 vụ khiếu nại thuộc thẩm quyền, đạt 66,7%",
        "đã giải quyết 0/1 vụ tố cáo thuộc thẩm quyền, đạt 0%",
        "không phát sinh vụ việc khiếu nại, tố cáo phức tạp",  # TTRA's standing default
        "Thông báo số 12/TB-UBND ngày 10/01/2022",  # the month's facts file
        "KT. CHỦ TỊCH",
        "Thanh tra tỉnh",
    ):
        assert text in md, text


def test_a_missing_commune_never_reads_as_no_delegation(month, tmp_path):
    """Honest coverage: without Sơn Mùa's return, the zero of the others is not 'none'."""
    rt = make_runtime(tmp_path / "data", report="tcd-monthly")
    open_period(rt, period=MONTH, units=None, now=parse_moment(str(TCD["open_at"])))
    names = [n for n in _tcd_files() if not n.startswith("SON-MUA")]
    ingest_files(rt, returned(rt, names, MONTH), now=parse_moment("2022-03-15T10:00"))
    result = consolidate_period(rt, MONTH)
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, dt.date(2022, 3, 18))
    md = write_report(rt.env, doc, result, rt.report, tmp_path, rt.cfg.body, None)[0]
    text = md.read_text(encoding="utf-8")
    assert "không có đoàn đông người" not in text
    assert "đã tiếp 0 (số liệu của 9/10 đơn vị) đoàn đông người" in text
    rt.engine.dispose()


def test_one_reminder_for_a_unit_late_on_two_reports(tmp_path: Path):
    """Both periods open, nothing back from anyone; on 15/03/2022 (the CCHC report's 'one
    day before', the monthly report's deadline) each commune gets ONE reminder naming both."""
    rt = make_runtime(tmp_path / "data", report=None)
    for entry, period in ((MANIFEST, PERIOD), (TCD, MONTH)):
        mine = rt.for_report(entry["report"])
        open_period(mine, period=period, units=None, now=parse_moment(str(entry["open_at"])))
    queue_reminders(rt, today=dt.date(2022, 3, 15), units=None)
    with session_scope(rt.engine) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
    by_unit: dict[str, list[OutboxMessage]] = {}
    for row in rows:
        by_unit.setdefault(row.unit_code, []).append(row)
    assert set(by_unit) == {
        *COMMUNES,
        "SON-TAN",
        "SON-TINH",
        "NV",
        "TP",
        "TCKH",
        "VHTT",
        "MOTCUA",
        "TTRA",
    }
    assert all(len(mine) == 1 for mine in by_unit.values())  # one each, wherever it is late
    [tan] = by_unit["SON-TAN"]
    assert tan.subject.endswith("Nhắc: 2 báo cáo chưa gửi - UBND xã Sơn Tân")
    assert "công tác cải cách hành chính (CCHC) Quý I/2022" in tan.body
    assert (
        "tiếp công dân, xử lý đơn thư, giải quyết khiếu nại, tố cáo (TCD) tháng 3/2022" in tan.body
    )
    assert "hôm nay, ngày 15/03/2022" in tan.body and "16/03/2022" in tan.body
    assert len(__import__("json").loads(tan.attachments)) == 2  # both forms again
    [ttra], [nv] = by_unit["TTRA"], by_unit["NV"]  # units of one report: that report only
    assert "Quý I/2022" not in ttra.body and "tháng 3/2022" in ttra.body
    assert "tháng 3/2022" not in nv.body and "Quý I/2022" in nv.body
    assert queue_reminders(rt, today=dt.date(2022, 3, 15), units=None) == []  # a rerun: nothing
    rt.engine.dispose()
