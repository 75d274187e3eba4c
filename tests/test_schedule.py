"""Deployment run times computed from the period rules, across quarters, years and Tết."""

from __future__ import annotations

import datetime as dt

import holidays
import pytest
from dateutil.rrule import rrulestr

from baocao.config import load_config
from baocao.periods import VN_TZ, Period, end_of_day, is_working_day
from baocao.settings import PROJECT_ROOT
from tasks.collect import collecting_period, period_dates
from tasks.schedule import deployment_times, rrule_with_dates

SCHEDULE = load_config(PROJECT_ROOT / "config").schedule


def test_next_runs_across_quarters_and_a_year_end():
    times = deployment_times(dt.date(2022, 12, 10), "Q", SCHEDULE)
    opens = [t.strftime("%d/%m/%Y %H:%M") for t in times["open-period"]]
    # Q4/2022 cut-off 14/12 (Wed) minus 5 working days; Q1/2023 cut-off 14/03/2023 (Tue).
    assert opens == [
        "07/12/2022 08:00",
        "07/03/2023 08:00",
        "07/06/2023 08:00",
        "07/09/2023 08:00",
        "07/12/2023 08:00",
    ]
    assert all(t.tzinfo == VN_TZ for t in times["open-period"])
    publishes = [t.date() for t in times["publish-report"]]
    assert publishes[0] == dt.date(2022, 12, 19)  # deadline Fri 16/12, next working day Mon 19/12


def test_reminders_only_on_working_days():
    times = deployment_times(dt.date(2022, 12, 10), "Q", SCHEDULE)["send-reminders"]
    assert times and all(is_working_day(t.date()) for t in times)
    assert all(t.hour == SCHEDULE.reminders.hour for t in times)


def test_a_deadline_moved_by_tet_moves_the_runs():
    # A district whose units' deadline is 30 working days after the Q4 cut-off (14/12/2022)
    # lands in Tết 2023 (20-26/01/2023) and must move past it.
    late = SCHEDULE.model_copy(update={"unit_deadline_working_days_after_cutoff": 26})
    [publish, *_] = deployment_times(dt.date(2022, 12, 10), "Q", late)["publish-report"]
    assert publish.date() > dt.date(2023, 1, 26)
    tet = {dt.date(2023, 1, d) for d in range(20, 27)}
    reminders = deployment_times(dt.date(2022, 12, 10), "Q", late)["send-reminders"]
    assert not tet & {t.date() for t in reminders}


def test_collecting_period_stays_until_the_next_opens():
    assert collecting_period(dt.date(2022, 3, 15), "Q", SCHEDULE) == Period.parse("2022-Q1")
    assert collecting_period(dt.date(2022, 4, 5), "Q", SCHEDULE) == Period.parse("2022-Q1")
    assert collecting_period(dt.date(2022, 6, 7), "Q", SCHEDULE) == Period.parse("2022-Q2")


def test_rrule_round_trips_to_the_same_dates():
    times = deployment_times(dt.date(2022, 12, 10), "Q", SCHEDULE)["open-period"]
    now = dt.datetime(2022, 12, 10, tzinfo=VN_TZ)
    rule = rrule_with_dates(times, now)
    assert [d.replace(tzinfo=VN_TZ) for d in rrulestr(rule, forceset=True)] == [
        t for t in times if t > now
    ]


# ---- every period kind ------------------------------------------------------------------


def test_monthly_runs_every_month_across_a_year_end():
    times = deployment_times(dt.date(2026, 11, 25), "M", SCHEDULE)
    opens = [t.date() for t in times["open-period"]]
    # from the month being collected to the first whose cut-off is a year away (serve is
    # restarted once a year): November 2026 to December 2027, one opening each
    assert [(d.year, d.month) for d in opens] == [(2026, 11), (2026, 12)] + [
        (2027, m) for m in range(1, 13)
    ]
    assert all(d.day < 14 for d in opens)  # every month opens before its cut-off, the 14th
    # January 2027: cut-off Thu 14/01/2027, 5 working days back past New Year's Day (Fri 01/01)
    assert opens[2] == dt.date(2027, 1, 7)


def test_monthly_deadline_in_tet_moves_past_it():
    # Tết 2026 is 16-20/02/2026 (holidays' VN calendar); February's cut-off Sat 14/02/2026:
    # units' deadline 2 working days after -> Mon 23, Tue 24/02, not in the week of Tết.
    tet = {d for d in holidays.country_holidays("VN", years=2026) if d.month == 2}
    assert tet == {dt.date(2026, 2, d) for d in range(16, 21)}
    dates = period_dates(Period.parse("2026-02"), SCHEDULE)
    assert dates.unit_last_day == dt.date(2026, 2, 24)
    assert dates.report_deadline == end_of_day(dt.date(2026, 2, 26))
    assert dates.open_day == dt.date(2026, 2, 9)
    reminders = deployment_times(dt.date(2026, 2, 1), "M", SCHEDULE)["send-reminders"]
    assert not tet & {t.date() for t in reminders}


def test_monthly_opening_counts_back_across_tet_2027():
    # Tết 2027 is 04-10/02/2027; February's cut-off Sun 14/02/2027: the opening 5 working days
    # before skips the holidays (12, 11, 3, 2, 1 February).
    tet = {d for d in holidays.country_holidays("VN", years=2027) if d.month == 2}
    assert tet == {dt.date(2027, 2, d) for d in range(4, 11)}
    dates = period_dates(Period.parse("2027-02"), SCHEDULE)
    assert dates.open_day == dt.date(2027, 2, 1)
    assert dates.unit_last_day == dt.date(2027, 2, 16)


@pytest.mark.parametrize(
    ("code", "open_day", "unit_last_day"),
    [
        ("2026-12", dt.date(2026, 12, 7), dt.date(2026, 12, 16)),
        ("2027-01", dt.date(2027, 1, 7), dt.date(2027, 1, 18)),
        ("2027-Q1", dt.date(2027, 3, 8), dt.date(2027, 3, 16)),
        ("2026-H1", dt.date(2026, 6, 8), dt.date(2026, 6, 16)),  # cut-off Sun 14/06
        ("2026-9M", dt.date(2026, 9, 7), dt.date(2026, 9, 16)),  # 02/09 National Day is before
        ("2026", dt.date(2026, 12, 7), dt.date(2026, 12, 16)),
    ],
)
def test_dates_of_each_kind(code, open_day, unit_last_day):
    dates = period_dates(Period.parse(code), SCHEDULE)
    assert (dates.open_day, dates.unit_last_day) == (open_day, unit_last_day)
    assert dates.window_end == Period.parse(code).cutoff
    assert dates.open_day < dates.window_end < dates.unit_last_day
    assert dates.unit_deadline < dates.report_deadline


@pytest.mark.parametrize("kind", ["M", "Q", "H", "9M", "Y"])
def test_every_kind_has_schedules_for_a_year(kind):
    today = dt.date(2026, 11, 25)
    times = deployment_times(today, kind, SCHEDULE)
    now = dt.datetime(2026, 11, 25, tzinfo=VN_TZ)
    for name, runs in times.items():
        assert rrule_with_dates(runs, now), name
        assert max(runs).date() >= today + dt.timedelta(days=300), name


@pytest.mark.parametrize(
    ("day", "kind", "code"),
    [
        (dt.date(2026, 12, 6), "M", "2026-11"),  # December opens on 07/12
        (dt.date(2026, 12, 7), "M", "2026-12"),
        (dt.date(2027, 1, 5), "M", "2026-12"),
        (dt.date(2026, 10, 20), "9M", "2026-9M"),  # still collected until next year's opens
        (dt.date(2027, 9, 6), "9M", "2026-9M"),
        (dt.date(2027, 9, 7), "9M", "2027-9M"),
        (dt.date(2026, 12, 6), "H", "2026-H1"),
        (dt.date(2026, 12, 7), "H", "2026-H2"),
    ],
)
def test_collecting_period_of_each_kind(day, kind, code):
    assert collecting_period(day, kind, SCHEDULE) == Period.parse(code)
