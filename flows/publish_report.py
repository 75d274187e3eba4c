"""Publish the report: consolidate, render, and dispatch it to every recipient."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, pause_flow_run
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from pydantic import Field

from baocao.models import ReportStatus
from baocao.periods import now_vn, parse_day
from flows.common import (
    AS_OF_HELP,
    CONFIG_HELP,
    FORCE_HELP,
    PERIOD_HELP,
    REPORT_HELP,
    artifact_key,
    log_force,
    pick_period,
    publish_status_artifact,
    run_name,
    start,
    user_errors_fail,
)
from tasks.approve import (
    Decision,
    approval_prompt,
    can_pause,
    code_expiry,
    decide,
    issue_codes_task,
    late_note,
    record_timeout,
    reload,
)
from tasks.consolidate import consolidate_task, require_complete
from tasks.notify import deliver_outbox_task
from tasks.publish import queue_report_task, render_version_task
from tasks.render import output_names


@flow(name="publish-report", flow_run_name=run_name)
@user_errors_fail
def publish_report(
    report: str = Field("", description=REPORT_HELP),
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
    rt, now = start(config_dir, as_of, report=report)
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
    summary["late"] = late = late_note(rt, p, day)
    if late:
        get_run_logger().warning("%s v%d: %s", p.code, row.version, late)
    if rt.schedule.approval_required and row.status != ReportStatus.APPROVED:
        # the approvers' one-time codes go out first: no decision counts without one
        issue_codes_task(
            rt, row, p, now_vn(), completeness=result.completeness, timeliness=result.timeliness
        )
        codes_sent = deliver_outbox_task(rt, kinds=["approval"], period_code=p.code)
        if codes_sent.get("failed"):
            get_run_logger().warning(
                "%d thư mã duyệt chưa gửi được (thử lại ở lần chạy sau); kiểm tra "
                "BAOCAO_MAIL_URL và địa chỉ người duyệt / approval codes not delivered",
                codes_sent["failed"],
            )
        if not can_pause():  # no UI to answer a pause: the decision comes from `baocao approve`
            get_run_logger().warning(
                "%s v%d chờ duyệt / waits for approval: người duyệt đã nhận mã qua thư; chạy "
                "`baocao approve %s --by NGƯỜI_DUYỆT --code MÃ --number SỐ --date NGÀY_KÝ`, "
                "rồi publish lại",
                p.code,
                row.version,
                p.code,
            )
            return {**summary, "status": row.status, "queued": 0, "sent": 0, "failed": 0}
        row = wait_for_approval(rt, row, result, late)
        if row.status != ReportStatus.APPROVED:
            get_run_logger().warning(
                "%s v%d %s (%s): %s; bản nháp giữ nguyên, không gửi gì / draft kept, nothing sent",
                p.code,
                row.version,
                row.status,
                row.decided_by or "-",
                row.comment or "-",
            )
            return {**summary, "status": row.status, "queued": 0, "sent": 0, "failed": 0}
    queued = queue_report_task(rt, result, row, log_force(force, f"the report of {p.code}"))
    sent = deliver_outbox_task(rt, kinds=["report"], period_code=p.code)
    get_run_logger().info(
        "%s v%d (%s)%s: %d notice(s) queued; delivery %s",
        p.code,
        row.version,
        "new" if new else "unchanged",
        f", số {row.number}/{rt.report.symbol}" if row.number else ", không số / courtesy copy",
        len(queued),
        sent,
    )
    return {
        **summary,
        "status": row.status,
        "number": row.number,
        "signed_on": row.signed_on,
        "queued": len(queued),
        **sent,
    }


def wait_for_approval(rt, row, result, late: str = ""):
    """Pause for an approver's decision in the UI, at most `approval.max_tries` times: a
    try counts only with the approver's live one-time code; a wrong, used or expired code is
    logged and asked again. No valid decision in time keeps the draft."""
    log = get_run_logger()
    hours = rt.schedule.approval_timeout_hours
    tries = rt.report.approval.max_tries
    prompt = approval_prompt(rt, row, result.completeness, result.timeliness, late, result)
    since = now_vn()
    for attempt in range(1, tries + 1):
        current = reload(rt, row.id)
        if current.status == ReportStatus.APPROVED:  # e.g. `baocao approve` meanwhile
            return current
        expiry = code_expiry(rt, row.id, now_vn())
        left = (expiry - now_vn()).total_seconds() if expiry else 0
        if left <= 0:
            return record_timeout(rt, row.id, hours=hours, now=now_vn(), since=since)
        try:
            decision = pause_flow_run(
                wait_for_input=Decision.with_initial_data(description=prompt),
                timeout=max(1, int(left)),
                poll_interval=5,
            )
        except FlowPauseTimeout:
            return record_timeout(rt, row.id, hours=hours, now=now_vn(), since=since)
        verdict = decide(
            rt,
            row.id,
            approver=decision.approver,
            code=decision.code,
            approve=decision.decision == "approve",
            comment=decision.comment,
            now=now_vn(),
            number=decision.number,
            signed_on=decision.signed_on,
        )
        if verdict.ok:
            log.info("%s", verdict.message)
            return verdict.row
        log.warning(
            "quyết định không được tính (lần %d/%d) / decision refused: %s",
            attempt,
            tries,
            verdict.message,
        )
    log.warning("hết %d lần thử / no tries left: bản nháp giữ nguyên", tries)
    return reload(rt, row.id)


def publish_artifacts(rt, result, row) -> None:
    """The completeness table and the report itself, on the run's Artifacts tab."""
    publish_status_artifact(rt, result.period)
    create_markdown_artifact(
        key=artifact_key(rt, "report", result.period),
        markdown=Path(row.folder, output_names(rt.report, result.period, rt.cfg.body).md).read_text(
            encoding="utf-8"
        ),
        description=f"Version {row.version} ({row.status}), files in {row.folder}",
    )
