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
    UNITS_HELP,
    check_delivery,
    finish,
    log_force,
    pick_period,
    publish_outbox_artifact,
    publish_status_artifact,
    start,
    user_errors_fail,
)
from tasks.notify import deliver_outbox_task
from tasks.remind import queue_reminders_task


@flow(name="send-reminders")
@user_errors_fail
def send_reminders(
    period: str = Field("", description=PERIOD_HELP),
    units: list[str] = Field([], description=UNITS_HELP),
    force: bool = Field(False, description=FORCE_HELP),
    as_of: str = Field("", description=AS_OF_HELP),
    config_dir: str = Field("", description=CONFIG_HELP),
) -> dict:
    """Queue today's reminder step for units without a valid submission, then send."""
    started = utcnow()
    rt, now = start(config_dir, as_of, units)
    p = pick_period(rt, period, now)
    tag = log_force(force, f"today's reminders for {p.code}")
    queued = queue_reminders_task(rt, p, now.date(), units, tag)
    sent = deliver_outbox_task(rt, kinds=["reminder"], period_code=p.code)
    publish_outbox_artifact(rt, p, "reminder", since=started)
    publish_status_artifact(rt, p)
    get_run_logger().info("%s: %d reminder(s) queued; delivery %s", p.code, len(queued), sent)
    problem = check_delivery(rt, "thư nhắc / reminders", sent, "reminder", p)
    return finish({"period": p.code, "queued": len(queued), **sent}, problem)
