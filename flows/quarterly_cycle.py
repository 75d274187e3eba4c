"""The whole quarter in one run: open (idempotent), take in the inbox, remind, publish when
every unit is in or the deadline has passed. Safe to run any day: each step does only what
is due and never twice. `stage` reruns one step only, `units` narrows the open or remind
step to some units (refused with any other stage: a report covers every unit). A step whose
messages all failed does not stop the others; the run then ends Failed naming it."""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger
from pydantic import Field

from flows.common import (
    AS_OF_HELP,
    CONFIG_HELP,
    FORCE_HELP,
    PERIOD_HELP,
    UNITS_HELP,
    finish,
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
from tasks.notify import DeliveryFailed

Stage = Literal["all", "open", "ingest", "remind", "publish"]


@flow(name="quarterly-cycle")
@user_errors_fail
def quarterly_cycle(
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
    refuse_unused(stage, period, units, force)
    rt, now = start(config_dir, as_of, units)
    p = pick_period(rt, period, now)
    kw = {"as_of": now.isoformat(), "config_dir": config_dir}
    out: dict = {}
    problems: list[str] = []

    def step(name: str, subflow, **params) -> None:
        try:
            out[name] = subflow(**params, **kw)
        except DeliveryFailed as exc:  # recorded and kept for retry: the next steps still run
            out[name] = exc.summary
            problems.append(f"{name}: {exc}")

    if stage in ("all", "open"):
        step("open", open_period, period=p.code, units=units, force=force)
    if stage in ("all", "ingest"):
        step("ingest", ingest_submissions)
    if stage in ("all", "remind"):
        step("reminders", send_reminders, period=p.code, units=units, force=force)
    if stage == "publish":
        step("publish", publish_report, period=p.code, force=force)
    elif stage == "all":
        result = consolidate_task(rt, p)
        due = now >= period_dates(p, rt.cfg.schedule).unit_deadline
        if result.units_in == len(result.expected) or due:
            step("publish", publish_report, period=p.code, force=force)
        else:
            get_run_logger().info(
                "%s: %s units in, deadline not passed: not publishing yet",
                p.code,
                result.completeness,
            )
    return finish(out, *problems)


def refuse_unused(stage: str, period: str, units: list[str], force: bool) -> None:
    """A parameter the stage would not use is refused with one line saying why."""
    if units and stage not in ("open", "remind"):
        raise ValueError(
            f"units={units} chỉ dùng với bước open hoặc remind: báo cáo gồm mọi đơn vị và bước "
            "nhận lấy mọi tệp gửi về; chọn stage open/remind hoặc để trống units / units "
            f"narrows the open and remind stages only (stage {stage}): a report covers every unit"
        )
    if stage == "ingest" and period:
        raise ValueError(
            f"period={period} không dùng với bước ingest: bước nhận lấy mọi tệp gửi về, kỳ nào "
            "cũng vậy; để trống period / ingest takes in every returned file, whatever its period"
        )
    if stage == "ingest" and force:
        raise ValueError(
            "force không dùng với bước ingest: tệp đã nhận không bao giờ nhận lại; để force tắt "
            "/ force does not apply to ingest: a file taken in is never taken twice"
        )
