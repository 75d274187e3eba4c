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
        ("2026-10", Period(2026, "M", 10)),
        ("2026-06", Period(2026, "M", 6)),
        ("2026-9M", Period(2026, "9M", 1)),
        ("2026-H2", Period(2026, "H", 2)),
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
    ("text", "code"),
    [
        ("T10/2026", "2026-10"),
        ("t10/2026", "2026-10"),
        ("tháng 10/2026", "2026-10"),
        ("Tháng 10 năm 2026", "2026-10"),
        ("thang 10/2026", "2026-10"),
        ("10/2026", "2026-10"),
        ("tháng 6/2026", "2026-06"),
        ("T1/2027", "2027-01"),
        ("2026-6", "2026-06"),
        ("Quý IV/2026", "2026-Q4"),
        ("QUÝ I/2026", "2026-Q1"),
        ("quý 4/2026", "2026-Q4"),
        ("quy iii nam 2026", "2026-Q3"),
        ("Q1-2022", "2022-Q1"),
        ("6 tháng đầu năm 2026", "2026-H1"),
        ("6 tháng năm 2026", "2026-H1"),
        ("6 thang dau nam 2026", "2026-H1"),
        ("6 tháng cuối năm 2026", "2026-H2"),
        ("9 tháng năm 2026", "2026-9M"),
        ("9 tháng đầu năm 2026", "2026-9M"),
        ("9 thang nam 2026", "2026-9M"),
        ("2026-9m", "2026-9M"),
        ("năm 2026", "2026"),
        ("Năm 2026", "2026"),
        ("nam 2026", "2026"),
    ],
)
def test_parse_what_clerks_write(text, code):
    assert Period.parse(text).code == code


@pytest.mark.parametrize(
    "text",
    [
        "2022-Q5",
        "2022-Q0",
        "2022-H3",
        "22-Q1",
        "2022Q1",
        "",
        "2022-X1",
        "năm",
        "2026-13",
        "2026-00",
        "2026-Q5",
        "2026-H3",
        "tháng 13/2026",
        "T0/2026",
        "Quý V/2026",
        "quý 5/2026",
        "2026-9M2",
        "8 tháng năm 2026",
        "13/2026",
    ],
)
def test_parse_invalid_names_the_input(text):
    with pytest.raises(PeriodError) as exc:
        Period.parse(text)
    message = str(exc.value)
    assert f"'{text}'" in message
    assert message.startswith("Kỳ báo cáo") and " / invalid period" in message
    assert "\n" not in message


def test_unknown_text_lists_the_accepted_forms():
    with pytest.raises(PeriodError) as exc:
        Period.parse("quý trước")
    for form in ("2026-10", "tháng 10/2026", "Quý IV/2026", "2026-H1", "2026-9M", "năm 2026"):
        assert form in str(exc.value)


def test_month_out_of_range_says_why():
    with pytest.raises(PeriodError, match="12 tháng"):
        Period.parse("tháng 13/2026")
    with pytest.raises(PeriodError, match="4 quý"):
        Period.parse("2026-Q5")


@pytest.mark.parametrize(
    ("kind", "n"), [("M", 13), ("M", 0), ("Q", 5), ("H", 3), ("9M", 2), ("Z", 1)]
)
def test_a_period_that_does_not_exist_cannot_be_built(kind, n):
    with pytest.raises(PeriodError):
        Period(2026, kind, n)


def test_june_and_the_six_months_do_not_look_alike():
    june, half = Period.parse("2026-06"), Period.parse("2026-H1")
    assert june != half
    assert (june.code, june.label) == ("2026-06", "tháng 6/2026")
    assert (half.code, half.label) == ("2026-H1", "6 tháng đầu năm 2026")
    assert june.cutoff == half.cutoff == D(2026, 6, 14)
    assert june.window()[0] == D(2026, 5, 15) != half.window()[0]


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
        ("2026-10", "tháng 10/2026"),
        ("2027-01", "tháng 1/2027"),
        ("2026-9M", "9 tháng năm 2026"),
    ],
)
def test_labels(text, label):
    p = Period.parse(text)
    assert p.label == label
    assert str(p) == p.code
    assert Period.parse(p.label) == p  # what the documents print reads back


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2022-Q1", D(2021, 12, 15), D(2022, 3, 14)),
        ("2022-Q2", D(2022, 3, 15), D(2022, 6, 14)),
        ("2022-Q3", D(2022, 6, 15), D(2022, 9, 14)),
        ("2022-Q4", D(2022, 9, 15), D(2022, 12, 14)),
        ("2022-H1", D(2021, 12, 15), D(2022, 6, 14)),
        ("2022", D(2021, 12, 15), D(2022, 12, 14)),
        ("2022-H2", D(2022, 6, 15), D(2022, 12, 14)),
        ("2026-10", D(2026, 9, 15), D(2026, 10, 14)),
        ("2026-12", D(2026, 11, 15), D(2026, 12, 14)),
        ("2027-01", D(2026, 12, 15), D(2027, 1, 14)),
        ("2026-9M", D(2025, 12, 15), D(2026, 9, 14)),
        ("2027-Q1", D(2026, 12, 15), D(2027, 3, 14)),
    ],
)
def test_window_decree_09_2019(text, start, end):
    p = Period.parse(text)
    assert p.window() == (start, end)
    assert p.cutoff == end


@pytest.mark.parametrize("first", ["2022-Q1", "2026-01", "2026-H1", "2026"])
def test_windows_tile_the_years(first):
    p = Period.parse(first)
    for _ in range(14):
        assert p.next().window()[0] == p.window()[1] + dt.timedelta(days=1)
        p = p.next()


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2026-10", 10, 10),
        ("2026-Q4", 10, 12),
        ("2026-H1", 1, 6),
        ("2026-H2", 7, 12),
        ("2026-9M", 1, 9),
        ("2026", 1, 12),
    ],
)
def test_first_and_last_month(text, first, last):
    p = Period.parse(text)
    assert (p.first_month, p.last_month) == (first, last)


@pytest.mark.parametrize(
    ("text", "previous", "following"),
    [
        ("2022-Q1", "2021-Q4", "2022-Q2"),
        ("2022-Q4", "2022-Q3", "2023-Q1"),
        ("2022-H1", "2021-H2", "2022-H2"),
        ("2022-H2", "2022-H1", "2023-H1"),
        ("2022", "2021", "2023"),
        ("2026-01", "2025-12", "2026-02"),
        ("2026-12", "2026-11", "2027-01"),
        ("2026-9M", "2025-9M", "2027-9M"),
    ],
)
def test_previous_and_next(text, previous, following):
    p = Period.parse(text)
    assert p.previous() == Period.parse(previous)
    assert p.next() == Period.parse(following)
    assert p.previous().next() == p


@pytest.mark.parametrize(
    ("day", "kind", "code"),
    [
        (D(2026, 10, 14), "M", "2026-10"),
        (D(2026, 10, 15), "M", "2026-11"),
        (D(2026, 12, 15), "M", "2027-01"),
        (D(2027, 1, 14), "M", "2027-01"),
        (D(2026, 12, 14), "Q", "2026-Q4"),
        (D(2026, 12, 15), "Q", "2027-Q1"),
        (D(2026, 6, 14), "H", "2026-H1"),
        (D(2026, 6, 15), "H", "2026-H2"),
        (D(2026, 12, 20), "H", "2027-H1"),
        (D(2026, 9, 14), "9M", "2026-9M"),
        (D(2026, 10, 20), "9M", "2026-9M"),  # between windows: the latest one begun
        (D(2026, 12, 15), "9M", "2027-9M"),
        (D(2026, 12, 14), "Y", "2026"),
        (D(2026, 12, 15), "Y", "2027"),
    ],
)
def test_containing(day, kind, code):
    p = Period.containing(day, kind)
    assert p == Period.parse(code) and p.kind == kind
    assert p.window()[0] <= day


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
