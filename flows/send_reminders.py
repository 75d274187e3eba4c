"""Remind late units by the escalation policy (scheduled every working day)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import Field

from baocao.models import utcnow
from flows.common import (
    AS_OF_HELP,
    CONFIG_HELP,
    FORCE_HELP,
    PERIOD_HELP,
    REPORT_HELP,
    UNITS_HELP,
    check_delivery,
    finish,
    log_force,
    pick_period,
    publish_outbox_artifact,
    publish_status_artifact,
    run_name,
    start,
    user_errors_fail,
)
from tasks.notify import deliver_outbox_task
from tasks.remind import queue_reminders_task, reminder_scopes


@flow(name="send-reminders", flow_run_name=run_name)
@user_errors_fail
def send_reminders(
    report: str = Field("", description=REPORT_HELP),
    period: str = Field("", description=PERIOD_HELP),
    units: list[str] = Field([], description=UNITS_HELP),
    force: bool = Field(False, description=FORCE_HELP),
    as_of: str = Field("", description=AS_OF_HELP),
    config_dir: str = Field("", description=CONFIG_HELP),
) -> dict:
    """Queue today's reminder step for units without a valid submission, then send: one
    reminder per unit for everything it owes (every report, unless one is named)."""
    started = utcnow()
    rt, now = start(config_dir, as_of, units, report)
    if period:
        scopes = [(rt.report.id, pick_period(rt, period, now))]
    else:
        scopes = reminder_scopes(rt, now.date())
    what = ", ".join(f"{r} {p.code}" for r, p in scopes) or "no opened period"
    tag = log_force(force, f"today's reminders for {what}")
    queued = queue_reminders_task(rt, scopes, now.date(), units, tag)
    sent = deliver_outbox_task(rt, kinds=["reminder"])
    for report_id, p in scopes:
        publish_outbox_artifact(rt.for_report(report_id), p, "reminder", since=started)
        publish_status_artifact(rt.for_report(report_id), p)
    get_run_logger().info("%s: %d reminder(s) queued; delivery %s", what, len(queued), sent)
    problem = None
    if scopes:
        first, p = scopes[0]
        problem = check_delivery(rt.for_report(first), "thư nhắc / reminders", sent, "reminder", p)
    periods = {r: p.code for r, p in scopes}
    one = next(iter(periods.values())) if len(periods) == 1 else ""
    return finish({"period": one, "periods": periods, "queued": len(queued), **sent}, problem)
