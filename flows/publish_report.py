"""Publish the report: consolidate, render, and dispatch it to every recipient."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, pause_flow_run
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from pydantic import Field

from baocao.periods import now_vn, parse_day
from flows.common import (
    AS_OF_HELP,
    CONFIG_HELP,
    FORCE_HELP,
    PERIOD_HELP,
    artifact_key,
    log_force,
    pick_period,
    publish_status_artifact,
    start,
    user_errors_fail,
)
from tasks.approve import Decision, approval_prompt, can_pause, record_decision
from tasks.consolidate import consolidate_task, require_complete
from tasks.notify import deliver_outbox_task
from tasks.publish import queue_report_task, render_version_task


@flow(name="publish-report")
@user_errors_fail
def publish_report(
    period: str = Field("", description=PERIOD_HELP),
    report_date: str = Field(
        "",
        description="Ngày ký báo cáo / date printed on the report, e.g. 2022-04-05 (blank: today)",
    ),
    force: bool = Field(False, description=FORCE_HELP),
    as_of: str = Field("", description=AS_OF_HELP),
    config_dir: str = Field("", description=CONFIG_HELP),
) -> dict:
    """Consolidate the period, render the report, send it to its recipients."""
    rt, now = start(config_dir, as_of)
    p = pick_period(rt, period, now)
    day = parse_day(report_date) or now.date()
    result = consolidate_task(rt, p)
    require_complete(result, rt.cfg, rt.report)
    row, new = render_version_task(rt, result, day, now)
    publish_artifacts(rt, result, row)
    summary = {
        "period": p.code,
        "version": row.version,
        "folder": row.folder,
        "new_version": new,
        "completeness": result.completeness,
        "timeliness": result.timeliness,
    }
    if rt.cfg.schedule.approval_required and row.status != "approved":
        if not can_pause():  # no UI to answer a pause: the decision comes from `baocao approve`
            get_run_logger().warning(
                "%s v%d waits for approval: `baocao approve %s --by NAME`, then publish again",
                p.code,
                row.version,
                p.code,
            )
            return {**summary, "status": row.status, "queued": 0, "sent": 0, "failed": 0}
        row = wait_for_approval(rt, row, result)
        if row.status != "approved":
            get_run_logger().warning(
                "%s v%d %s by %s: %s; draft kept, nothing sent",
                p.code,
                row.version,
                row.status,
                row.decided_by,
                row.comment,
            )
            return {**summary, "status": row.status, "queued": 0, "sent": 0, "failed": 0}
    queued = queue_report_task(rt, result, row, log_force(force, f"the report of {p.code}"))
    sent = deliver_outbox_task(rt, kinds=["report"], period_code=p.code)
    get_run_logger().info(
        "%s v%d (%s): %d notice(s) queued; delivery %s",
        p.code,
        row.version,
        "new" if new else "unchanged",
        len(queued),
        sent,
    )
    return {**summary, "status": row.status, "queued": len(queued), **sent}


def wait_for_approval(rt, row, result):
    """Pause for the administrator's decision in the UI and store it; a timeout keeps the draft."""
    hours = rt.cfg.schedule.approval_timeout_hours
    prompt = approval_prompt(row, result.completeness, result.timeliness)
    try:
        decision = pause_flow_run(
            wait_for_input=Decision.with_initial_data(description=prompt), timeout=int(hours * 3600)
        )
    except FlowPauseTimeout:
        return record_decision(
            rt,
            row.id,
            status="timed_out",
            decided_by=None,
            comment=f"no decision within {hours:g} h",
            now=now_vn(),
        )
    status = "approved" if decision.decision == "approve" else "sent_back"
    return record_decision(
        rt,
        row.id,
        status=status,
        decided_by=decision.decided_by,
        comment=decision.comment,
        now=now_vn(),
    )


def publish_artifacts(rt, result, row) -> None:
    """The completeness table and the report itself, on the run's Artifacts tab."""
    publish_status_artifact(rt, result.period)
    create_markdown_artifact(
        key=artifact_key(rt, "report", result.period),
        markdown=Path(row.folder, "report.md").read_text(encoding="utf-8"),
        description=f"Version {row.version} ({row.status}), files in {row.folder}",
    )
