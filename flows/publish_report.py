"""Publish the report: consolidate, render, and dispatch it to every recipient."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from flows.common import (
    AS_OF_HELP,
    CONFIG_HELP,
    FORCE_HELP,
    PERIOD_HELP,
    log_force,
    pick_period,
    start,
)
from tasks.consolidate import consolidate_task, require_complete
from tasks.notify import deliver_outbox_task
from tasks.publish import queue_report_task, render_version_task


@flow(name="publish-report")
def publish_report(
    period: str | None = Field(None, description=PERIOD_HELP),
    report_date: str | None = Field(
        None,
        description="Ngày ký báo cáo / date printed on the report, e.g. 2022-04-05 (blank: today)",
    ),
    force: bool = Field(False, description=FORCE_HELP),
    as_of: str | None = Field(None, description=AS_OF_HELP),
    config_dir: str | None = Field(None, description=CONFIG_HELP),
) -> dict:
    """Consolidate the period, render the report, send it to its recipients."""
    rt, now = start(config_dir, as_of)
    p = pick_period(rt, period, now)
    day = dt.date.fromisoformat(report_date) if report_date else now.date()
    result = consolidate_task(rt, p)
    require_complete(result, rt.cfg, rt.report)
    row, new = render_version_task(rt, result, day, now)
    tag = log_force(force, f"the report of {p.code}")
    queued = queue_report_task(rt, result, row, tag)
    sent = deliver_outbox_task(rt.engine, kinds=["report"], period_code=p.code)
    publish_artifacts(rt, result, row)
    get_run_logger().info(
        "%s v%d (%s): %d notice(s) queued; delivery %s",
        p.code,
        row.version,
        "new" if new else "unchanged",
        len(queued),
        sent,
    )
    return {
        "period": p.code,
        "version": row.version,
        "folder": row.folder,
        "new_version": new,
        "queued": len(queued),
        **sent,
        "completeness": result.completeness,
        "timeliness": result.timeliness,
    }


def publish_artifacts(rt, result, row) -> None:
    """The completeness table and the report itself, on the run's Artifacts tab."""
    key = f"{rt.report.id}-{result.period.code}".lower()
    table = result.status.assign(received_at=result.status["received_at"].astype(str))
    create_table_artifact(
        key=f"status-{key}",
        table=table.to_dict(orient="records"),
        description=f"Completeness {result.completeness}, on time {result.timeliness}",
    )
    md = Path(row.folder, "report.md").read_text(encoding="utf-8")
    create_markdown_artifact(
        key=f"report-{key}",
        markdown=md,
        description=f"Version {row.version}, files in {row.folder}",
    )
