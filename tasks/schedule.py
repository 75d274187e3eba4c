"""When each deployment runs, computed from the period rules (so a deadline moved by Tết
moves its runs too), as explicit dates for Prefect RRule schedules in Asia/Ho_Chi_Minh."""

from __future__ import annotations

import datetime as dt

from baocao.config import Schedule
from baocao.periods import VN_TZ, Period, add_working_days, is_working_day
from tasks.collect import collecting_period, period_dates

OVERDUE_REMINDER_SPAN = 10  # working days after the deadline during which reminders run
HORIZON_DAYS = 366  # the schedules reach the first period whose cut-off is this far away


def upcoming_periods(
    today: dt.date, kind: str, schedule: Schedule, count: int | None = None
) -> list[Period]:
    """The period being collected today and the next ones: `count` in all, or by default up
    to the first whose cut-off is a year away (so `serve`, restarted yearly, never runs out)."""
    periods = [collecting_period(today, kind, schedule)]
    horizon = today + dt.timedelta(days=HORIZON_DAYS)
    while (len(periods) < count) if count else (periods[-1].cutoff < horizon):
        periods.append(periods[-1].next())
    return periods


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=VN_TZ)


def open_times(periods: list[Period], schedule: Schedule) -> list[dt.datetime]:
    return [_at(period_dates(p, schedule).open_day, schedule.open_hour) for p in periods]


def reminder_times(periods: list[Period], schedule: Schedule) -> list[dt.datetime]:
    """Every working day from the opening day to some days past the units' deadline."""
    times: list[dt.datetime] = []
    for p in periods:
        dates = period_dates(p, schedule)
        day, last = dates.open_day, add_working_days(dates.unit_last_day, OVERDUE_REMINDER_SPAN)
        while day <= last:
            if is_working_day(day):
                times.append(_at(day, schedule.reminders.hour))
            day += dt.timedelta(days=1)
    return sorted(set(times))


def publish_times(periods: list[Period], schedule: Schedule) -> list[dt.datetime]:
    """The first working day after the units' deadline (the cycle publishes earlier when all
    units are in)."""
    return [
        _at(add_working_days(period_dates(p, schedule).unit_last_day, 1), schedule.open_hour)
        for p in periods
    ]


def rrule_with_dates(times: list[dt.datetime], after: dt.datetime) -> str:
    """An RFC 5545 rule of explicit local dates (RDATE), for Prefect's RRuleSchedule."""
    local = sorted(t.astimezone(VN_TZ).replace(tzinfo=None) for t in times if t > after)
    if not local:
        raise ValueError("no run time after now")
    fmt = "%Y%m%dT%H%M%S"
    return f"DTSTART:{local[0].strftime(fmt)}\nRDATE:" + ",".join(t.strftime(fmt) for t in local)


def deployment_times(
    today: dt.date, kind: str, schedule: Schedule, count: int | None = None
) -> dict[str, list[dt.datetime]]:
    """Run times per dated deployment for the periods `upcoming_periods` gives."""
    periods = upcoming_periods(today, kind, schedule, count)
    return {
        "open-period": open_times(periods, schedule),
        "send-reminders": reminder_times(periods, schedule),
        "publish-report": publish_times(periods, schedule),
    }
