"""Deployment run times computed from the period rules, across quarters, years and Tết."""

from __future__ import annotations

import datetime as dt

from dateutil.rrule import rrulestr

from baocao.config import load_config
from baocao.periods import VN_TZ, Period, is_working_day
from baocao.settings import PROJECT_ROOT
from tasks.collect import collecting_period
from tasks.schedule import deployment_times, rrule_with_dates

SCHEDULE = load_config(PROJECT_ROOT / "config").schedule


def test_next_runs_across_quarters_and_a_year_end():
    times = deployment_times(dt.date(2022, 12, 10), "Q", SCHEDULE)
    opens = [t.strftime("%d/%m/%Y %H:%M") for t in times["open-period"]]
    # Q4/2022 cut-off 14/12 (Wed) minus 5 working days; Q1/2023 cut-off 14/03/2023 (Tue).
    assert opens == ["07/12/2022 08:00", "07/03/2023 08:00", "07/06/2023 08:00", "07/09/2023 08:00"]
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
