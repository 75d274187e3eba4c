"""Periods: parsing, labels, the Decree 09/2019 data window, working days and deadlines."""

from __future__ import annotations

import datetime as dt

import holidays
import pytest

from baocao.config import load_config
from baocao.periods import (
    VN_TZ,
    Period,
    PeriodError,
    add_working_days,
    end_of_day,
    is_working_day,
    next_working_day,
    working_days_between,
)
from baocao.settings import PROJECT_ROOT
from tasks.collect import period_dates

D = dt.date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-Q1", Period(2022, "Q", 1)),
        ("2022-Q4", Period(2022, "Q", 4)),
        ("2022-H1", Period(2022, "H", 1)),
        ("2022", Period(2022, "Y", 1)),
        (" 2022-q3 ", Period(2022, "Q", 3)),
    ],
)
def test_parse(text, expected):
    p = Period.parse(text)
    assert p == expected
    assert Period.parse(p.code) == p


def test_codes():
    assert Period.parse("2022-Q1").code == "2022-Q1"
    assert Period.parse("2022-H1").code == "2022-H1"
    assert str(Period.parse("2022")) == "2022"


@pytest.mark.parametrize(
    "text", ["2022-Q5", "2022-Q0", "2022-H3", "22-Q1", "2022Q1", "Q1-2022", "", "2022-X1", "năm"]
)
def test_parse_invalid_names_the_input(text):
    with pytest.raises(PeriodError) as exc:
        Period.parse(text)
    assert f"'{text}'" in str(exc.value)


def test_period_error_is_a_value_error():
    assert issubclass(PeriodError, ValueError)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("2022-Q1", "Quý I/2022"),
        ("2022-Q4", "Quý IV/2022"),
        ("2022-H1", "6 tháng đầu năm 2022"),
        ("2022-H2", "6 tháng cuối năm 2022"),
        ("2022", "năm 2022"),
    ],
)
def test_labels(text, label):
    assert Period.parse(text).label == label


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2022-Q1", D(2021, 12, 15), D(2022, 3, 14)),
        ("2022-Q2", D(2022, 3, 15), D(2022, 6, 14)),
        ("2022-Q3", D(2022, 6, 15), D(2022, 9, 14)),
        ("2022-Q4", D(2022, 9, 15), D(2022, 12, 14)),
        ("2022-H1", D(2021, 12, 15), D(2022, 6, 14)),
        ("2022", D(2021, 12, 15), D(2022, 12, 14)),
    ],
)
def test_window_decree_09_2019(text, start, end):
    p = Period.parse(text)
    assert p.window() == (start, end)
    assert p.cutoff == end


def test_quarter_windows_tile_the_year():
    q = Period.parse("2022-Q1")
    for _ in range(7):
        assert q.next().window()[0] == q.window()[1] + dt.timedelta(days=1)
        q = q.next()


@pytest.mark.parametrize(
    ("text", "previous", "following"),
    [
        ("2022-Q1", "2021-Q4", "2022-Q2"),
        ("2022-Q4", "2022-Q3", "2023-Q1"),
        ("2022-H1", "2021-H2", "2022-H2"),
        ("2022-H2", "2022-H1", "2023-H1"),
        ("2022", "2021", "2023"),
    ],
)
def test_previous_and_next(text, previous, following):
    p = Period.parse(text)
    assert p.previous() == Period.parse(previous)
    assert p.next() == Period.parse(following)
    assert p.previous().next() == p


# ---- working days ---------------------------------------------------------------------


def test_weekend_is_not_a_working_day():
    assert is_working_day(D(2022, 3, 18))  # Friday
    assert not is_working_day(D(2022, 3, 19))  # Saturday
    assert not is_working_day(D(2022, 3, 20))  # Sunday


def test_saturday_deadline_moves_to_monday():
    assert next_working_day(D(2022, 3, 19)) == D(2022, 3, 21)
    assert next_working_day(D(2022, 3, 20)) == D(2022, 3, 21)
    assert next_working_day(D(2022, 3, 21)) == D(2022, 3, 21)
    assert add_working_days(D(2022, 3, 19), 0) == D(2022, 3, 21)
    assert add_working_days(D(2022, 3, 18), 1) == D(2022, 3, 21)  # Friday + 1


def test_tet_2023_moves_a_deadline_past_the_holiday():
    vn = holidays.country_holidays("VN", years=2023)
    tet = [d for d in vn if D(2023, 1, 15) <= d <= D(2023, 2, 5)]
    assert D(2023, 1, 20) in tet and D(2023, 1, 26) in tet  # what the holidays lib says
    for day in tet:
        assert not is_working_day(day)
    first_after = next_working_day(max(tet) + dt.timedelta(days=1))
    assert first_after == D(2023, 1, 27)
    assert next_working_day(D(2023, 1, 20)) == first_after  # a deadline falling on Tết
    assert add_working_days(D(2023, 1, 19), 1) == first_after  # Thursday before Tết + 1
    assert working_days_between(D(2023, 1, 19), D(2023, 1, 27)) == 1


def test_tet_2022_counts():
    # 31/01 - 04/02/2022 are Tết holidays; 14/03/2022 (Monday) is the Q1 cut-off
    assert not any(is_working_day(D(2022, 1, 31) + dt.timedelta(days=k)) for k in range(5))
    assert add_working_days(D(2022, 1, 28), 1) == D(2022, 2, 7)


def test_add_working_days_negative():
    monday = D(2022, 3, 14)
    assert add_working_days(monday, -1) == D(2022, 3, 11)  # Friday
    assert add_working_days(monday, -5) == D(2022, 3, 7)
    assert add_working_days(D(2023, 1, 27), -1) == D(2023, 1, 19)  # back across Tết
    assert add_working_days(add_working_days(monday, 7), -7) == monday


def test_working_days_between_is_signed():
    assert working_days_between(D(2022, 3, 14), D(2022, 3, 21)) == 5
    assert working_days_between(D(2022, 3, 21), D(2022, 3, 14)) == -5
    assert working_days_between(D(2022, 3, 14), D(2022, 3, 14)) == 0


def test_end_of_day_is_24h_vietnam_time():
    eod = end_of_day(D(2022, 3, 16))
    assert eod == dt.datetime(2022, 3, 17, 0, 0, tzinfo=VN_TZ)
    assert eod.utcoffset() == dt.timedelta(hours=7)
    assert eod.isoformat() == "2022-03-17T00:00:00+07:00"
    assert eod == dt.datetime(2022, 3, 16, 17, 0, tzinfo=dt.UTC)
    just_before = dt.datetime(2022, 3, 16, 23, 59, 59, tzinfo=VN_TZ)
    assert just_before < eod <= dt.datetime(2022, 3, 17, 0, 0, 1, tzinfo=VN_TZ)


def test_period_dates_with_bundled_schedule():
    schedule = load_config(PROJECT_ROOT / "config").schedule
    dates = period_dates(Period.parse("2022-Q1"), schedule)
    assert (dates.window_start, dates.window_end) == (D(2021, 12, 15), D(2022, 3, 14))
    assert dates.open_day == D(2022, 3, 7)
    assert dates.unit_deadline == end_of_day(D(2022, 3, 16))
    assert dates.unit_last_day == D(2022, 3, 16)
    assert dates.report_deadline == end_of_day(D(2022, 3, 18))


def test_deadlines_per_level_2022_q1():
    from baocao.config import load_config
    from baocao.settings import PROJECT_ROOT
    from tasks.collect import period_dates

    dates = period_dates(Period.parse("2022-Q1"), load_config(PROJECT_ROOT / "config").schedule)
    last = {
        k: (getattr(dates, k) - dt.timedelta(seconds=1)).date()
        for k in ("unit_deadline", "report_deadline", "province_deadline")
    }
    # units by Wed 16/03, the district by Fri 18/03, the province by Sun 20/03 -> Mon 21/03
    assert last == {
        "unit_deadline": dt.date(2022, 3, 16),
        "report_deadline": dt.date(2022, 3, 18),
        "province_deadline": dt.date(2022, 3, 21),
    }
    assert last["unit_deadline"] < last["report_deadline"] < last["province_deadline"]
