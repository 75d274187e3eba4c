"""The office's reporting calendar: every report's opening day, units' deadline and report
deadline in a year, with weekends, Tết and public holidays applied, as a table and as an
iCalendar (.ics) file the office subscribes to in its calendar program.

Each date comes from the same rules the flows follow (`tasks.collect.period_dates`), so the
calendar and the runs never disagree. An event's UID names its report, period and step, so a
calendar program that re-reads the file updates an event instead of adding a second one.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import holidays
from icalendar import Calendar, Event
from prefect import task
from prefect.cache_policies import NO_CACHE

from baocao import vnformat
from baocao.config import Config, ReportDef
from baocao.periods import Period
from baocao.runtime import Runtime
from tasks.collect import period_dates


class Step(StrEnum):
    OPEN = "open"
    UNITS_DUE = "units-due"
    REPORT_DUE = "report-due"


STEP_LABELS = {
    Step.OPEN: "Gửi yêu cầu, biểu mẫu cho đơn vị",
    Step.UNITS_DUE: "Hạn đơn vị nộp số liệu",
    Step.REPORT_DUE: "Hạn gửi báo cáo",
}


@dataclass(frozen=True)
class Entry:
    """One date of one report's period."""

    day: dt.date
    step: Step
    report: ReportDef
    period: Period
    note: str = ""  # the holidays the date was moved past, if any

    @property
    def title(self) -> str:
        return f"{STEP_LABELS[self.step]}: báo cáo {self.report.name} {self.period.label}"

    @property
    def uid(self) -> str:
        return f"{self.report.id}-{self.period.code}-{self.step}@baocao"


def periods_touching(year: int, report: ReportDef, cfg: Config) -> list[Period]:
    """The report's periods with an opening day or a deadline in `year`."""
    schedule = report.schedule or cfg.schedule
    p = Period.containing(dt.date(year - 1, 11, 1), report.period_kind)
    out = []
    while (dates := period_dates(p, schedule)).open_day.year <= year:
        if dates.report_deadline.date().year >= year:
            out.append(p)
        p = p.next()
    return out


def _holidays_between(start: dt.date, end: dt.date) -> str:
    """Names of the public holidays from `start` to `end` (what moved a date), deduplicated."""
    vn = holidays.country_holidays("VN", years=range(start.year, end.year + 1), language="vi")
    names: list[str] = []
    day = start
    while day <= end:
        name = vn.get(day)
        if name and name not in names:
            names.append(name)
        day += dt.timedelta(days=1)
    return "; ".join(names)


def year_calendar(cfg: Config, year: int, reports: list[ReportDef] | None = None) -> list[Entry]:
    """Every date of every report (or of `reports`) falling in `year`, in date order."""
    entries: list[Entry] = []
    for report in reports or list(cfg.reports.values()):
        schedule = report.schedule or cfg.schedule
        for p in periods_touching(year, report, cfg):
            dates = period_dates(p, schedule)
            cutoff = dates.window_end
            for step, day in (
                (Step.OPEN, dates.open_day),
                (Step.UNITS_DUE, dates.unit_last_day),
                (Step.REPORT_DUE, (dates.report_deadline - dt.timedelta(seconds=1)).date()),
            ):
                if day.year != year:
                    continue
                span = (day, cutoff) if day < cutoff else (cutoff, day)
                entries.append(Entry(day, step, report, p, _holidays_between(*span)))
    order = list(Step)
    return sorted(entries, key=lambda e: (e.day, order.index(e.step), e.report.id))


def calendar_rows(entries: list[Entry]) -> list[dict]:
    """The calendar as table rows (CLI, UI artifact), Vietnamese dates."""
    return [
        {
            "ngày / date": vnformat.date(e.day),
            "thứ / weekday": vnformat.weekday(e.day),
            "việc / step": STEP_LABELS[e.step],
            "báo cáo / report": e.report.id,
            "kỳ / period": e.period.label,
            "nghỉ lễ trong khoảng / holidays in between": e.note,
        }
        for e in entries
    ]


def to_ics(entries: list[Entry], *, office: str, year: int) -> bytes:
    """An iCalendar file of the entries: all-day events with stable UIDs."""
    cal = Calendar()
    cal.add("prodid", "-//baocao//lich bao cao//VI")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"Lịch báo cáo {year} - {office}")
    cal.add("x-wr-timezone", "Asia/Ho_Chi_Minh")
    stamp = dt.datetime(year, 1, 1, tzinfo=dt.UTC)  # stable: the same file for the same rules
    for e in entries:
        event = Event()
        event.add("uid", e.uid)
        event.add("dtstamp", stamp)
        event.add("summary", e.title)
        event.add("dtstart", e.day)
        event.add("dtend", e.day + dt.timedelta(days=1))
        event.add("categories", [e.report.id])
        if e.note:
            event.add("description", f"Đã tính ngày nghỉ: {e.note}")
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    return cal.to_ical()


def write_calendar(rt: Runtime, year: int, path: Path | None = None) -> tuple[list[Entry], Path]:
    """The year's calendar of the run's reports, written as .ics to `path` (default
    `<data>/calendar/lich-bao-cao-<year>.ics`, replaced whole, so a subscriber never reads
    half a file)."""
    entries = year_calendar(rt.cfg, year, rt.reports)
    path = path or rt.settings.data_dir / "calendar" / f"lich-bao-cao-{year}.ics"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(to_ics(entries, office=rt.cfg.body.short_name, year=year))
    os.replace(tmp, path)
    return entries, path


@task(name="write-calendar", cache_policy=NO_CACHE)
def write_calendar_task(rt: Runtime, year: int) -> tuple[list[Entry], Path]:
    """Write the year's reporting calendar (.ics) into the data folder."""
    return write_calendar(rt, year)
