"""Reporting periods, their data windows and their deadlines.

The period kinds of Decree 09/2019/NĐ-CP (Article 12), each with a code the program writes
and the label documents print:

| kind | code | label | data window |
|---|---|---|---|
| `M` (tháng) | `2026-10` | tháng 10/2026 | 15/09/2026 - 14/10/2026 |
| `Q` (quý) | `2026-Q4` | Quý IV/2026 | 15/09/2026 - 14/12/2026 |
| `H` (6 tháng) | `2026-H1`, `2026-H2` | 6 tháng đầu năm 2026, 6 tháng cuối năm 2026 | 15/12/2025 - 14/06/2026, 15/06/2026 - 14/12/2026 |
| `9M` (9 tháng) | `2026-9M` | 9 tháng năm 2026 | 15/12/2025 - 14/09/2026 |
| `Y` (năm) | `2026` | năm 2026 | 15/12/2025 - 14/12/2026 |

A month is the ISO year-month `2026-06`; the six months are `2026-H1`: the two never look
alike. `Period.parse` also takes what clerks write (`T10/2026`, `tháng 10/2026`, `10/2026`,
`Quý IV/2026`, `quý 4/2026`, `6 tháng đầu năm 2026`, `9 tháng năm 2026`, `năm 2026`, with or
without diacritics) and gives the code.

Data window (Decree 09/2019/NĐ-CP on the reporting regime of state administrative
agencies, Article 12): from the 15th of the month before the period's first month to the
14th of its last month (Q1/2022: 15/12/2021 - 14/03/2022; January 2027: 15/12/2026 -
14/01/2027); the six-month, nine-month and annual reports from 15/12 of the previous year.

Deadlines fall on working days: a day that is a Saturday, a Sunday or a Vietnamese public
holiday (the `holidays` package, Tết included) moves to the next working day, and a
deadline day ends at 24:00 Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from baocao import vnformat

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

KINDS = ("M", "Q", "H", "9M", "Y")
PER_YEAR = {"M": 12, "Q": 4, "H": 2, "9M": 1, "Y": 1}  # periods of a kind in a year
_SPAN = {"M": 1, "Q": 3, "H": 6, "9M": 9, "Y": 12}  # months from first_month to last_month
_TOO_MANY = {  # kind -> (Vietnamese, English): why a number is out of range
    "M": ("một năm có 12 tháng", "a year has 12 months"),
    "Q": ("một năm có 4 quý (Q1-Q4)", "a year has four quarters"),
    "H": ("một năm có hai kỳ 6 tháng (H1, H2)", "a year has two halves, H1 and H2"),
    "9M": ("một năm có một kỳ 9 tháng", "a year has one nine-month period"),
    "Y": ("kỳ năm không có số thứ tự", "a year has no number"),
}
_ACCEPTED = (
    "viết tháng 2026-10 (T10/2026, tháng 10/2026, 10/2026), quý 2026-Q4 (Quý IV/2026, "
    "quý 4/2026), 6 tháng 2026-H1 hoặc 2026-H2 (6 tháng đầu năm 2026, 6 tháng cuối năm 2026), "
    "9 tháng 2026-9M (9 tháng năm 2026) hoặc năm 2026 (năm 2026)",
    "write a month 2026-10, a quarter 2026-Q4, a half 2026-H1 or 2026-H2, nine months 2026-9M "
    "or a year 2026",
)


class PeriodError(ValueError):
    """A period written in none of the accepted forms, or one that does not exist."""

    @classmethod
    def of(cls, text: str, why: tuple[str, str]) -> PeriodError:
        """`Kỳ báo cáo 'X' không hợp lệ: <vi> / invalid period 'X': <en>.`"""
        return cls(
            f"Kỳ báo cáo '{text}' không hợp lệ: {why[0]} / invalid period '{text}': {why[1]}."
        )


def _plain(text: str) -> str:
    """Lower case without diacritics, spaces collapsed: `Quý IV/2026` -> `quy iv/2026`."""
    text = str(text).replace("đ", "d").replace("Đ", "D")
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(bare.lower().split())


_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
_SEP = r"\s*(?:/|-|\s)\s*(?:nam\s+)?"  # `10/2026`, `10-2026`, `10 năm 2026`
# (pattern over the plain text, (year, kind, n) from its match); first match wins
_FORMS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], tuple[str, str, str]]], ...] = (
    (re.compile(r"(\d{4})"), lambda m: (m[1], "Y", "1")),
    (re.compile(r"(\d{4})-q(\d)"), lambda m: (m[1], "Q", m[2])),
    (re.compile(r"(\d{4})-h(\d)"), lambda m: (m[1], "H", m[2])),
    (re.compile(r"(\d{4})-9m"), lambda m: (m[1], "9M", "1")),
    (re.compile(r"(\d{4})-(\d{1,2})"), lambda m: (m[1], "M", m[2])),
    (re.compile(rf"(?:t|thang)\s*(\d{{1,2}}){_SEP}(\d{{4}})"), lambda m: (m[2], "M", m[1])),
    (re.compile(r"(\d{1,2})\s*[/-]\s*(\d{4})"), lambda m: (m[2], "M", m[1])),
    (
        re.compile(rf"(?:quy|q)\s*(iv|i{{1,3}}|\d){_SEP}(\d{{4}})"),
        lambda m: (m[2], "Q", str(_ROMAN.get(m[1], m[1]))),
    ),
    (
        re.compile(r"(?:6|sau) thang (?:(dau|cuoi) )?nam\s*/?\s*(\d{4})"),
        lambda m: (m[2], "H", "2" if m[1] == "cuoi" else "1"),
    ),
    (re.compile(r"(?:9|chin) thang (?:dau )?nam\s*/?\s*(\d{4})"), lambda m: (m[1], "9M", "1")),
    (re.compile(r"nam\s*/?\s*(\d{4})"), lambda m: (m[1], "Y", "1")),
)


@dataclass(frozen=True, order=True)
class Period:
    year: int
    kind: str  # "M", "Q", "H", "9M" or "Y" (KINDS)
    n: int = 1  # the month, quarter or half; 1 for "9M" and "Y"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PeriodError(
                f"Loại kỳ '{self.kind}' không có: {', '.join(KINDS)} / unknown period kind "
                f"'{self.kind}': {', '.join(KINDS)}"
            )
        if not 1 <= self.n <= PER_YEAR[self.kind]:
            raise PeriodError.of(f"{self.year}-{self.kind}{self.n}", _TOO_MANY[self.kind])

    @classmethod
    def parse(cls, text: str) -> Period:
        """A code (`2026-10`, `2026-Q4`, `2026-H1`, `2026-9M`, `2026`) or a clerk's spelling."""
        return _parse(text)

    @property
    def code(self) -> str:
        """`2026-10`, `2026-Q4`, `2026-H1`, `2026-9M` or `2026`."""
        if self.kind == "Y":
            return str(self.year)
        if self.kind == "M":
            return f"{self.year}-{self.n:02d}"
        if self.kind == "9M":
            return f"{self.year}-9M"
        return f"{self.year}-{self.kind}{self.n}"

    def __str__(self) -> str:
        return self.code

    @property
    def label(self) -> str:
        """As a document writes it: `tháng 10/2026`, `Quý I/2022`, `6 tháng đầu năm 2022`,
        `9 tháng năm 2026`, `năm 2022`."""
        if self.kind == "M":
            return f"tháng {self.n}/{self.year}"
        if self.kind == "Q":
            return vnformat.quarter(self.n, self.year)
        if self.kind == "H":
            return f"6 tháng {'đầu' if self.n == 1 else 'cuối'} năm {self.year}"
        if self.kind == "9M":
            return f"9 tháng năm {self.year}"
        return f"năm {self.year}"

    @property
    def last_month(self) -> int:
        return self.first_month + _SPAN[self.kind] - 1

    @property
    def first_month(self) -> int:
        return _SPAN[self.kind] * (self.n - 1) + 1 if self.kind in ("M", "Q", "H") else 1

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
        """The period whose data window holds `day` (16/03/2022 is in 2022-Q2's window); for
        9M, whose windows leave 15/09-14/12 out, the latest one begun by `day`."""
        p = cls(day.year + 1, kind, 1)
        while p.window()[0] > day:
            p = p.previous()
        return p

    def previous(self) -> Period:
        """The period before (for 9M and Y, the same period of the year before)."""
        if self.n > 1:
            return Period(self.year, self.kind, self.n - 1)
        return Period(self.year - 1, self.kind, PER_YEAR[self.kind])

    def next(self) -> Period:
        if self.n < PER_YEAR[self.kind]:
            return Period(self.year, self.kind, self.n + 1)
        return Period(self.year + 1, self.kind, 1)


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


@lru_cache(maxsize=4096)  # a batch parses the same few codes ten thousand times
def _parse(text: str) -> Period:
    plain = _plain(text)
    for pattern, parts in _FORMS:
        if m := pattern.fullmatch(plain):
            year, kind, n = parts(m)
            if not 1 <= int(n) <= PER_YEAR[kind]:
                raise PeriodError.of(text, _TOO_MANY[kind])
            return Period(int(year), kind, int(n))
    raise PeriodError.of(text, _ACCEPTED)
