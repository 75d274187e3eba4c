"""Remind the units that have no valid submission yet, by the escalation policy in
config/schedule.yaml: N working days before the deadline, on the day, then every few working
days overdue; past a threshold the unit's head and the chairman's office are told too, each
in one digest a day listing the late units (not one message per unit).

`reminder_step` is a pure function of the day, so a simulated month is a loop over dates.
Each step is queued under its own key, so a step is never sent twice, whatever reruns.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from baocao import crud
from baocao.config import Reminders
from baocao.db import session_scope
from baocao.notices import Notice, queue_notices
from baocao.periods import Period, is_working_day, working_days_between
from baocao.runtime import Runtime
from tasks.collect import period_dates, select_units
from tasks.consolidate import load_period, unit_status
from tasks.messages import Outstanding, escalation_notices, reminder_notices


def reminder_step(today: dt.date, last_day: dt.date, policy: Reminders) -> tuple[str, int] | None:
    """(step name, working days left) when `today` is a reminder day, else None.

    Days left is negative once overdue. No reminders on weekends and public holidays."""
    if not is_working_day(today):
        return None
    left = working_days_between(today, last_day)
    if left > 0 and left in policy.working_days_before:
        return f"before-{left}", left
    if left == 0 and policy.on_the_day:
        return "due-day", 0
    if (
        left < 0
        and policy.overdue_every_working_days
        and (-left) % policy.overdue_every_working_days == 0
    ):
        return f"overdue-{-left}", left
    return None


def escalated(left: int, policy: Reminders) -> bool:
    return left < 0 and -left >= policy.escalate_after_working_days


def outstanding(
    rt: Runtime, period: Period, units: list[str] | None, step: tuple[str, int]
) -> list[Outstanding]:
    """The chosen units without a valid submission for the period, as of `today`."""
    dates = period_dates(period, rt.schedule)
    name, left = step
    subs, _ = load_period(rt, period)
    chosen = select_units(rt.cfg, rt.report, units)
    status = unit_status(subs, rt.cfg, chosen).set_index("unit")
    with session_scope(rt.engine) as s:
        row = crud.get_period(s, report_id=rt.report.id, code=period.code)
        forms = crud.requests_for(s, period_id=row.id) if row else {}
    items = []
    for code in chosen:
        state = str(status.at[code, "state"])
        if state == "valid":
            continue
        version = status.at[code, "version"]
        items.append(
            Outstanding(
                report=rt.report,
                period=period,
                unit=rt.cfg.unit_map[code],
                deadline=dates.unit_last_day,
                days=left,
                step=name,
                state=state,
                version=None if pd.isna(version) else int(version),
                errors=int(status.at[code, "errors"]),
                form_path=forms[code].form_path if code in forms else None,
                indicators=tuple(rt.cfg.indicators_of(rt.report, code)),
            )
        )
    return items


def reminder_notices_for(
    rt: Runtime,
    period: Period,
    today: dt.date,
    units: list[str] | None,
    force_tag: str | None = None,
) -> list[Notice]:
    """Today's reminder step: one reminder per late unit and, past the escalation
    threshold, one digest per head and per office of `escalate_to`."""
    dates = period_dates(period, rt.schedule)
    policy = rt.schedule.reminders
    step = reminder_step(today, dates.unit_last_day, policy)
    if step is None and not force_tag:
        return []
    step = step or ("manual", working_days_between(today, dates.unit_last_day))
    items = outstanding(rt, period, units, step)
    notices = reminder_notices(rt, items, force_tag=force_tag)
    if escalated(step[1], policy):
        notices += escalation_notices(
            rt,
            items,
            today=today,
            escalate_to=policy.escalate_to,
            selection=units or None,
            force_tag=force_tag,
        )
    return notices


def queue_reminders(
    rt: Runtime,
    *,
    period: Period,
    today: dt.date,
    units: list[str] | None,
    force_tag: str | None = None,
) -> list[str]:
    """Queue today's reminders; returns the keys newly queued (none on a rerun)."""
    notices = reminder_notices_for(rt, period, today, units, force_tag)
    with session_scope(rt.engine) as s:
        return queue_notices(s, notices)


@task(name="queue-reminders", cache_policy=NO_CACHE)
def queue_reminders_task(
    rt: Runtime,
    period: Period,
    today: dt.date,
    units: list[str] | None,
    force_tag: str | None = None,
) -> list[str]:
    """Queue today's reminder step for late units."""
    return queue_reminders(rt, period=period, today=today, units=units, force_tag=force_tag)
