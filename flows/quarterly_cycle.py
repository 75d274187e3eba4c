"""The whole quarter in one run: open (idempotent), take in the inbox, remind, publish when
every unit is in or the deadline has passed. Safe to run any day: each step does only what
is due and never twice."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import Field

from flows.common import AS_OF_HELP, CONFIG_HELP, PERIOD_HELP, pick_period, start
from flows.ingest_submissions import ingest_submissions
from flows.open_period import open_period
from flows.publish_report import publish_report
from flows.send_reminders import send_reminders
from tasks.collect import period_dates
from tasks.consolidate import consolidate_task


@flow(name="quarterly-cycle")
def quarterly_cycle(
    period: str | None = Field(None, description=PERIOD_HELP),
    as_of: str | None = Field(None, description=AS_OF_HELP),
    config_dir: str | None = Field(None, description=CONFIG_HELP),
) -> dict:
    """Open, ingest, remind and (when due) publish one period."""
    rt, now = start(config_dir, as_of)
    p = pick_period(rt, period, now)
    kw = {"as_of": now.isoformat(), "config_dir": config_dir}
    out = {"open": open_period(period=p.code, **kw), "ingest": ingest_submissions(**kw)}
    out["reminders"] = send_reminders(period=p.code, **kw)
    result = consolidate_task(rt, p)
    due = now >= period_dates(p, rt.cfg.schedule).unit_deadline
    if result.units_in == len(result.expected) or due:
        out["publish"] = publish_report(period=p.code, **kw)
    else:
        get_run_logger().info(
            "%s: %s units in, deadline not passed: not publishing yet", p.code, result.completeness
        )
    return out
