"""Reporting periods, their data windows and their deadlines.

A period is written `2022-Q1` (quarter), `2022-H1` (six months) or `2022` (year) and
shown as `Quý I/2022`, `6 tháng đầu năm 2022`, `năm 2022`.

Data window (Decree 09/2019/NĐ-CP on the reporting regime of state administrative
agencies, Article 12, point a of clause 1 and following): a quarterly report covers
the figures from the 15th of the month before the quarter to the 14th of the quarter's
last month (Q1/2022: 15/12/2021 - 14/03/2022); a six-month report from 15/12 of the
previous year to 14/06; an annual report from 15/12 of the previous year to 14/12.

Deadlines fall on working days: a day that is a Saturday, a Sunday or a Vietnamese public
holiday (the `holidays` package, Tết included) moves to the next working day, and a
deadline day ends at 24:00 Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from baocao import vnformat

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_PATTERN = re.compile(r"^(?P<year>\d{4})(?:-(?P<kind>Q|H)(?P<n>[1-4]))?$")


class PeriodError(ValueError):
    """A period string that is not `YYYY-Qn`, `YYYY-Hn` or `YYYY`."""


@dataclass(frozen=True, order=True)
class Period:
    year: int
    kind: str  # "Q", "H" or "Y"
    n: int = 1

    @classmethod
    def parse(cls, text: str) -> Period:
        m = _PATTERN.match(str(text).strip().upper())
        if not m:
            raise PeriodError(
                f"Kỳ báo cáo '{text}' không hợp lệ / invalid period '{text}': "
                "write 2022-Q1 (quarter), 2022-H1 (six months) or 2022 (year)."
            )
        year, kind, n = int(m["year"]), m["kind"] or "Y", int(m["n"] or 1)
        if kind == "H" and n > 2:
            raise PeriodError(f"invalid period '{text}': a year has two halves, H1 and H2.")
        return cls(year, kind, n)

    @property
    def code(self) -> str:
        return str(self.year) if self.kind == "Y" else f"{self.year}-{self.kind}{self.n}"

    def __str__(self) -> str:
        return self.code

    @property
    def label(self) -> str:
        """As a document writes it: `Quý I/2022`, `6 tháng đầu năm 2022`, `năm 2022`."""
        if self.kind == "Q":
            return vnformat.quarter(self.n, self.year)
        if self.kind == "H":
            return f"6 tháng {'đầu' if self.n == 1 else 'cuối'} năm {self.year}"
        return f"năm {self.year}"

    @property
    def last_month(self) -> int:
        return {"Q": 3 * self.n, "H": 6 * self.n, "Y": 12}[self.kind]

    @property
    def first_month(self) -> int:
        return {"Q": 3 * self.n - 2, "H": 6 * self.n - 5, "Y": 1}[self.kind]

    def window(self) -> tuple[dt.date, dt.date]:
        """Data window under Decree 09/2019/NĐ-CP: 15th of the month before to 14th of the last.

        The second half-year and the annual report are cumulative from 15/12 of the
        previous year in the decree; H2 here covers 15/06 - 14/12, the months it adds.
        """
        y, m = (self.year - 1, 12) if self.first_month == 1 else (self.year, self.first_month - 1)
        return dt.date(y, m, 15), dt.date(self.year, self.last_month, 14)

    @property
    def cutoff(self) -> dt.date:
        return self.window()[1]

    @classmethod
    def containing(cls, day: dt.date, kind: str = "Q") -> Period:
        """The period whose data window holds `day` (16/03/2022 is in 2022-Q2's window)."""
        p = cls(day.year + 1, kind, 1)
        while p.window()[0] > day:
            p = p.previous()
        return p

    def previous(self) -> Period:
        if self.kind == "Y":
            return Period(self.year - 1, "Y")
        count = 4 if self.kind == "Q" else 2
        return (
            Period(self.year, self.kind, self.n - 1)
            if self.n > 1
            else Period(self.year - 1, self.kind, count)
        )

    def next(self) -> Period:
        if self.kind == "Y":
            return Period(self.year + 1, "Y")
        count = 4 if self.kind == "Q" else 2
        return (
            Period(self.year, self.kind, self.n + 1)
            if self.n < count
            else Period(self.year + 1, self.kind, 1)
        )


@lru_cache(maxsize=64)
def _vn_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("VN", years=[year - 1, year, year + 1])


def is_working_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _vn_holidays(day.year)


def next_working_day(day: dt.date) -> dt.date:
    """`day` itself when it is a working day, else the next one."""
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def add_working_days(day: dt.date, n: int) -> dt.date:
    """The n-th working day after `day` (n may be negative; 0 gives `day` rolled forward)."""
    if n == 0:
        return next_working_day(day)
    step = 1 if n > 0 else -1
    while n:
        day += dt.timedelta(days=step)
        if is_working_day(day):
            n -= step
    return day


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days in (start, end]; negative when end is before start."""
    if end < start:
        return -working_days_between(end, start)
    count, day = 0, start
    while day < end:
        day += dt.timedelta(days=1)
        count += is_working_day(day)
    return count


def end_of_day(day: dt.date) -> dt.datetime:
    """24:00 Asia/Ho_Chi_Minh of `day`, as an aware datetime (the next day's 00:00)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=VN_TZ)


def now_vn() -> dt.datetime:
    return dt.datetime.now(VN_TZ)


def as_vn(value: dt.datetime) -> dt.datetime:
    """Aware datetime in Vietnam time; a naive value from the store is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(VN_TZ)


def parse_moment(text: str | None) -> dt.datetime | None:
    """An ISO date or datetime typed by an administrator; naive means Vietnam time."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"'{text}' is not a date/time: write 2022-03-15 or 2022-03-15T08:00"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=VN_TZ)


def parse_day(text: str | None) -> dt.date | None:
    """A date typed by an administrator (2022-04-05 or 05/04/2022); blank means none."""
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise ValueError(f"'{text}' is not a date: write 2022-04-05 or 05/04/2022")
