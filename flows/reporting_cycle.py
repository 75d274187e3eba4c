"""The whole cycle in one run, for one report or every report of the office: open the
period being collected (idempotent), take in the inbox, remind (one reminder per unit for
all it owes), publish each report when every unit is in or its deadline has passed. Safe to
run any day: each step does only what is due and never twice. `stage` reruns one step only,
`units` narrows the open or remind step to some units (refused with any other stage: a
report covers every unit). A step whose messages all failed does not stop the others; the
run then ends Failed naming it."""

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
    finish,
    pick_period,
    run_name,
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


@flow(name="reporting-cycle", flow_run_name=run_name)
@user_errors_fail
def reporting_cycle(
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
    """Open, ingest, remind and (when due) publish the period of each report, or one stage."""
    refuse_unused(stage, period, units, force)
    rt, now = start(config_dir, as_of, units, report)
    if period and len(rt.reports) > 1:
        raise ValueError(
            f"kỳ {period} thuộc một báo cáo: hãy chọn báo cáo (report) / a period belongs to "
            f"one report: name it ({', '.join(r.id for r in rt.reports)})"
        )
    periods = {r.id: pick_period(rt.for_report(r.id), period, now) for r in rt.reports}
    kw = {"as_of": now.isoformat(), "config_dir": config_dir}
    out: dict = {}
    problems: list[str] = []

    def step(name: str, subflow, **params):
        try:
            return subflow(**params, **kw)
        except DeliveryFailed as exc:  # recorded and kept for retry: the next steps still run
            problems.append(f"{name}: {exc}")
            return exc.summary

    if stage in ("all", "open"):
        out["open"] = {
            r: step(f"open {r}", open_period, report=r, period=p.code, units=units, force=force)
            for r, p in periods.items()
        }
    if stage in ("all", "ingest"):
        out["ingest"] = step("ingest", ingest_submissions)
    if stage in ("all", "remind"):
        one = {"report": report, "period": period} if period else {"report": report}
        out["reminders"] = step("reminders", send_reminders, **one, units=units, force=force)
    if stage in ("all", "publish"):
        out["publish"] = {
            r: step(f"publish {r}", publish_report, report=r, period=p.code, force=force)
            for r, p in periods.items()
            if stage == "publish" or due(rt.for_report(r), p, now)
        }
    return finish(out, *problems)


def due(rt, p, now) -> bool:
    """A report is published by the cycle once every unit is in or their deadline passed."""
    result = consolidate_task(rt, p)
    if result.units_in == len(result.expected) or now >= period_dates(p, rt.schedule).unit_deadline:
        return True
    get_run_logger().info(
        "%s %s: %s units in, deadline not passed: not publishing yet",
        rt.report.id,
        p.code,
        result.completeness,
    )
    return False


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
