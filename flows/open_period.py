"""Open a period: every unit gets its request and pre-filled form (scheduled each quarter)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import Field

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
    run_name,
    start,
    user_errors_fail,
)
from tasks.collect import open_period_task
from tasks.notify import deliver_outbox_task


@flow(name="open-period", flow_run_name=run_name, log_prints=False)
@user_errors_fail
def open_period(
    report: str = Field("", description=REPORT_HELP),
    period: str = Field("", description=PERIOD_HELP),
    units: list[str] = Field([], description=UNITS_HELP),
    force: bool = Field(False, description=FORCE_HELP),
    as_of: str = Field("", description=AS_OF_HELP),
    config_dir: str = Field("", description=CONFIG_HELP),
) -> dict:
    """Create the period's collection requests and send them with their forms."""
    rt, now = start(config_dir, as_of, units, report)
    p = pick_period(rt, period, now)
    tag = log_force(force, f"requests of {p.code}")
    opened = open_period_task(rt, p, units, now, tag is not None)
    sent = deliver_outbox_task(rt, kinds=["request"], period_code=p.code)
    get_run_logger().info("opened %s: %s; delivery %s", p.code, opened, sent)
    if opened["facts"]:
        get_run_logger().warning("%s", opened["facts"])
    problem = check_delivery(rt, "thư đề nghị / requests", sent, "request", p)
    return finish({**opened, **sent}, problem)
