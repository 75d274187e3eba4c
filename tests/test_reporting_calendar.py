"""The office's reporting calendar: the dates the flows follow, as a table and an .ics."""

from __future__ import annotations

import datetime as dt

from icalendar import Calendar

from baocao.config import load_config
from tasks.reporting_calendar import Step, calendar_rows, to_ics, year_calendar
from tests.conftest import PROJECT_ROOT

CFG = load_config(PROJECT_ROOT / "config")


def test_a_year_lists_every_period_s_opening_and_deadlines_in_order():
    entries = year_calendar(CFG, 2022)
    q1 = [(e.step, e.day) for e in entries if e.period.code == "2022-Q1"]
    assert q1 == [
        (Step.OPEN, dt.date(2022, 3, 7)),
        (Step.UNITS_DUE, dt.date(2022, 3, 16)),
        (Step.REPORT_DUE, dt.date(2022, 3, 18)),
    ]
    march = [(e.step, e.day) for e in entries if e.period.code == "2022-03"]
    assert march == [  # the monthly report: its own schedule keys, the same cut-off
        (Step.OPEN, dt.date(2022, 3, 9)),
        (Step.UNITS_DUE, dt.date(2022, 3, 15)),
        (Step.REPORT_DUE, dt.date(2022, 3, 18)),
    ]
    quarters = {e.period.code for e in entries if e.report.id == "cchc-quarterly"}
    months = {e.period.code for e in entries if e.report.id == "tcd-monthly"}
    assert quarters == {"2022-Q1", "2022-Q2", "2022-Q3", "2022-Q4"}
    assert months == {f"2022-{m:02d}" for m in range(1, 13)}
    assert [e.day for e in entries] == sorted(e.day for e in entries)
    assert all(e.day.year == 2022 and e.day.weekday() < 5 for e in entries)
    row = calendar_rows(entries)[0]  # tháng 1/2022 opens 3 working days before Fri 14/01
    assert row["ngày / date"] == "11/01/2022" and row["thứ / weekday"] == "Thứ Ba"


def test_the_ics_file_reads_back_with_one_stable_event_per_date():
    entries = year_calendar(CFG, 2022)
    data = to_ics(entries, office="UBND huyện Sơn Tây", year=2022)
    assert data == to_ics(entries, office="UBND huyện Sơn Tây", year=2022)  # same file again
    events = Calendar.from_ical(data).walk("VEVENT")
    assert len(events) == len(entries)
    uids = [str(e["uid"]) for e in events]
    assert len(set(uids)) == len(uids)
    first = next(e for e in events if "cchc" in str(e["uid"]))
    assert first["uid"] == "cchc-quarterly-2022-Q1-open@baocao"
    assert first.decoded("dtstart") == dt.date(2022, 3, 7)
    assert "Quý I/2022" in str(first["summary"])


def test_the_calendar_command_prints_the_dates_and_writes_the_ics(tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    target = tmp_path / "lich.ics"
    result = CliRunner().invoke(app, ["calendar", "2022", "--ics", str(target)])
    assert result.exit_code == 0, result.output
    assert "07/03/2022" in result.output and str(target) in result.output.replace("\n", "")
    assert "09/03/2022" in result.output  # the monthly report's opening of tháng 3/2022
    assert len(Calendar.from_ical(target.read_bytes()).walk("VEVENT")) == 12 + 36
