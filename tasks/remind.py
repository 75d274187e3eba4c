"""Remind the units that have no valid submission yet, by the escalation policy in
config/schedule.yaml: N working days before the deadline, on the day, then every few working
days overdue; past a threshold the unit's head and the chairman's office are told too.

`reminder_step` is a pure function of the day, so a simulated month is a loop over dates.
Each step is queued under its own key, so a step is never sent twice, whatever reruns.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from baocao import crud, vnformat
from baocao.config import Reminders
from baocao.db import session_scope
from baocao.periods import Period, is_working_day, working_days_between
from baocao.runtime import Runtime
from tasks.collect import period_dates, select_units
from tasks.consolidate import load_period, unit_status
from tasks.notify import compose, messages_for


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


def reminder_messages(
    rt: Runtime,
    period: Period,
    today: dt.date,
    units: list[str] | None,
    force_tag: str | None = None,
) -> list[dict]:
    """Outbox rows for today's reminder step, for units without a valid submission."""
    dates = period_dates(period, rt.cfg.schedule)
    policy = rt.cfg.schedule.reminders
    step = reminder_step(today, dates.unit_last_day, policy)
    if step is None and not force_tag:
        return []
    name, left = step or ("manual", working_days_between(today, dates.unit_last_day))
    subs, _ = load_period(rt, period)
    chosen = select_units(rt.cfg, rt.report, units)
    status = unit_status(subs, rt.cfg, chosen).set_index("unit")
    with session_scope(rt.engine) as s:
        row = crud.get_period(s, report_id=rt.report.id, code=period.code)
        forms = crud.requests_for(s, period_id=row.id) if row else {}
    rows: list[dict] = []
    for code in chosen:
        if status.at[code, "state"] == "valid":
            continue
        unit = rt.cfg.unit_map[code]
        ctx = dict(
            body=rt.cfg.body,
            unit=unit,
            period=period,
            report=rt.report,
            step=name,
            deadline=vnformat.date(dates.unit_last_day),
            days=left,
            state=status.at[code, "state"],
            version=status.at[code, "version"],
            errors=status.at[code, "errors"],
            indicators=rt.cfg.indicators_of(rt.report, code),
        )
        attach = [str(Path(forms[code].form_path).resolve())] if code in forms else []
        key = f"reminder:{rt.report.id}:{period.code}:{code}:{name}"
        targets = [("", code, unit.contacts, None, attach)]
        if escalated(left, policy):
            targets += [
                (f":{who}", who, person.contacts, f"{person.title} {person.name}", [])
                for who, person in _escalation_targets(rt, code, policy)
            ]
        for suffix, recipient, contacts, to_head, files in targets:
            subject, body = compose(rt.env, "messages/reminder.txt", **ctx, to_head=to_head)
            rows += messages_for(
                key=key + suffix,
                kind="reminder",
                period_code=period.code,
                unit_code=code,
                recipient=recipient,
                contacts=contacts,
                subject=subject,
                body=body,
                attachments=files,
                force_tag=force_tag,
            )
    return rows


def _escalation_targets(rt: Runtime, code: str, policy: Reminders):
    unit = rt.cfg.unit_map[code]
    for target in policy.escalate_to:
        if target == "head" and unit.head:
            yield f"head:{code}", unit.head
        elif target in rt.cfg.body.offices:
            yield target, rt.cfg.body.offices[target]


def queue_reminders(
    rt: Runtime,
    *,
    period: Period,
    today: dt.date,
    units: list[str] | None,
    force_tag: str | None = None,
) -> list[str]:
    """Queue today's reminders; returns the keys newly queued (none on a rerun)."""
    rows = reminder_messages(rt, period, today, units, force_tag)
    with session_scope(rt.engine) as s:
        return crud.enqueue(s, messages=rows)


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
