"""Remind the units that have no valid submission yet, by the escalation policy in
config/schedule.yaml: N working days before the deadline, on the day, then every few working
days overdue; past a threshold the unit's head and the chairman's office are told too, each
in one digest a day listing the late units (not one message per unit).

`reminder_step` is a pure function of the day, so a simulated month is a loop over dates.
Each step is queued under its own key, so a step is never sent twice, whatever reruns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from baocao import crud
from baocao.config import Reminders
from baocao.db import session_scope
from baocao.notices import Notice, queue_notices
from baocao.periods import Period, is_working_day, working_days_between
from baocao.runtime import Runtime
from tasks.collect import collecting_period, period_dates
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
    """The report's units (of `units`, when given) without a valid submission for the period."""
    dates = period_dates(period, rt.schedule)
    name, left = step
    subs, _ = load_period(rt, period)
    chosen = [u for u in rt.cfg.expected_units(rt.report) if not units or u in units]
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


def due_items(
    rt: Runtime, period: Period, today: dt.date, units: list[str] | None, forced: bool
) -> tuple[list[Outstanding], bool]:
    """The report's late units at today's reminder step (none when today is no step, unless
    `forced`), and whether the step escalates."""
    dates = period_dates(period, rt.schedule)
    policy = rt.schedule.reminders
    step = reminder_step(today, dates.unit_last_day, policy)
    if step is None and not forced:
        return [], False
    step = step or ("manual", working_days_between(today, dates.unit_last_day))
    return outstanding(rt, period, units, step), escalated(step[1], policy)


def reminder_scopes(rt: Runtime, today: dt.date) -> list[tuple[str, Period]]:
    """(report, period) of every report of the run whose period being collected today has
    been opened: the periods reminders are about when none is named."""
    with session_scope(rt.engine) as s:
        opened = crud.periods_by_code(s, report_ids=[r.id for r in rt.reports])
    scopes = []
    for report in rt.reports:
        p = collecting_period(today, report.period_kind, report.schedule or rt.cfg.schedule)
        if (report.id, p.code) in opened:
            scopes.append((report.id, p))
    return scopes


def reminder_notices_for(
    rt: Runtime,
    scopes: Sequence[tuple[str, Period]],
    today: dt.date,
    units: list[str] | None,
    force_tag: str | None = None,
) -> list[Notice]:
    """Today's reminder step across reports: one reminder per late unit listing what it owes
    to every report and, past a report's escalation threshold, one digest per head and per
    office of its `escalate_to`."""
    items: list[Outstanding] = []
    escalations: dict[tuple[str, ...], list[Outstanding]] = {}
    for report_id, period in scopes:
        mine = rt.for_report(report_id)
        late, escalates = due_items(mine, period, today, units, force_tag is not None)
        items += late
        if escalates:
            escalations.setdefault(mine.schedule.reminders.escalate_to, []).extend(late)
    notices = reminder_notices(rt, items, force_tag=force_tag)
    for escalate_to, late in escalations.items():
        notices += escalation_notices(
            rt,
            late,
            today=today,
            escalate_to=escalate_to,
            selection=units or None,
            force_tag=force_tag,
        )
    return notices


def queue_reminders(
    rt: Runtime,
    *,
    today: dt.date,
    units: list[str] | None,
    period: Period | None = None,
    scopes: Sequence[tuple[str, Period]] | None = None,
    force_tag: str | None = None,
) -> list[str]:
    """Queue today's reminders for `period` of the run's report, the (report, period)
    `scopes`, or (neither) what every report is collecting; returns the keys newly queued
    (none on a rerun)."""
    if scopes is None:
        scopes = [(rt.report.id, period)] if period else reminder_scopes(rt, today)
    notices = reminder_notices_for(rt, scopes, today, units, force_tag)
    with session_scope(rt.engine) as s:
        return queue_notices(s, notices)


@task(name="queue-reminders", cache_policy=NO_CACHE)
def queue_reminders_task(
    rt: Runtime,
    scopes: list[tuple[str, Period]],
    today: dt.date,
    units: list[str] | None,
    force_tag: str | None = None,
) -> list[str]:
    """Queue today's reminder step for late units of every (report, period) scope."""
    return queue_reminders(rt, scopes=scopes, today=today, units=units, force_tag=force_tag)
