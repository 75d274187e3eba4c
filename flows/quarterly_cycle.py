"""The whole quarter in one run: open (idempotent), take in the inbox, remind, publish when
every unit is in or the deadline has passed. Safe to run any day: each step does only what
is due and never twice. `stage` reruns one step only, `units` narrows it to some units."""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger
from pydantic import Field

from flows.common import (
    AS_OF_HELP,
    CONFIG_HELP,
    FORCE_HELP,
    PERIOD_HELP,
    REPORT_HELP,
    UNITS_HELP,
    pick_period,
    start,
    user_errors_fail,
)
from flows.ingest_submissions import ingest_submissions
from flows.open_period import open_period
from flows.publish_report import publish_report
from flows.send_reminders import send_reminders
from tasks.collect import period_dates
from tasks.consolidate import consolidate_task

Stage = Literal["all", "open", "ingest", "remind", "publish"]


@flow(name="quarterly-cycle")
@user_errors_fail
def quarterly_cycle(
    report: str = Field("", description=REPORT_HELP),
    period: str = Field("", description=PERIOD_HELP),
    stage: Stage = Field(
        "all", description="Bước cần chạy / stage: all, open, ingest, remind or publish"
    ),
    units: list[str] = Field([], description=UNITS_HELP),
    force: bool = Field(False, description=FORCE_HELP),
    as_of: str = Field("", description=AS_OF_HELP),
    config_dir: str = Field("", description=CONFIG_HELP),
) -> dict:
    """Open, ingest, remind and (when due) publish one period, or one stage of it."""
    rt, now = start(config_dir, as_of, units, report)
    p = pick_period(rt, period, now)
    kw = {"report": rt.report.id, "as_of": now.isoformat(), "config_dir": config_dir}
    out: dict = {}
    if stage in ("all", "open"):
        out["open"] = open_period(period=p.code, units=units, force=force, **kw)
    if stage in ("all", "ingest"):
        out["ingest"] = ingest_submissions(as_of=kw["as_of"], config_dir=config_dir)
    if stage in ("all", "remind"):
        out["reminders"] = send_reminders(period=p.code, units=units, force=force, **kw)
    if stage == "publish":
        out["publish"] = publish_report(period=p.code, force=force, **kw)
    elif stage == "all":
        result = consolidate_task(rt, p)
        due = now >= period_dates(p, rt.schedule).unit_deadline
        if result.units_in == len(result.expected) or due:
            out["publish"] = publish_report(period=p.code, force=force, **kw)
        else:
            get_run_logger().info(
                "%s: %s units in, deadline not passed: not publishing yet",
                p.code,
                result.completeness,
            )
    return out
