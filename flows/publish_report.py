"""Publish the report: consolidate, render, have it approved, and dispatch it to every
recipient; the report's artifact shows where the version stands and where its files are."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import Field
from sqlmodel import select

from baocao.db import session_scope
from baocao.models import DeliveryStatus, OutboxMessage, RenderedReport, ReportStatus
from baocao.periods import Period, now_vn, parse_day
from baocao.runtime import Runtime
from flows.common import (
    AS_OF_HELP,
    CONFIG_HELP,
    FORCE_HELP,
    PERIOD_HELP,
    REPORT_HELP,
    artifact_key,
    check_delivery,
    finish,
    log_force,
    pick_period,
    publish_status_artifact,
    run_name,
    start,
    user_errors_fail,
)
from tasks.approve import (
    can_pause,
    coverage_notes,
    issue_codes_task,
    late_note,
    wait_for_approval,
)
from tasks.consolidate import Consolidated, consolidate_task, require_complete
from tasks.notify import deliver_outbox_task
from tasks.publish import number_label, queue_report_task, render_version_task, stamped_name
from tasks.render import output_names

NOTHING_SENT = {"queued": 0, "sent": 0, "failed": 0}


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
    """Consolidate the period, render the report, have it approved, send it to its recipients."""
    rt, now = start(config_dir, as_of, report=report)
    p = pick_period(rt, period, now)
    day = parse_day(report_date) or now.date()
    result = consolidate_task(rt, p)
    require_complete(result, rt.cfg, rt.report)
    row, new = render_version_task(rt, result, day, now)
    publish_status_artifact(rt, p)
    report_artifact(rt, result, row)
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
        row, problem = ask_approval(rt, row, result, late)
        if row.status != ReportStatus.APPROVED:
            report_artifact(rt, result, row)
            return finish({**summary, "status": row.status, **NOTHING_SENT}, problem)
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
    problem = check_delivery(rt, "báo cáo / the report", sent, "report", p)
    report_artifact(rt, result, row)
    summary = {**summary, "status": row.status, "number": row.number, "signed_on": row.signed_on}
    return finish({**summary, "queued": len(queued), **sent}, problem)


def ask_approval(
    rt: Runtime, row: RenderedReport, result: Consolidated, late: str
) -> tuple[RenderedReport, str | None]:
    """The approvers' one-time codes go out first (no decision counts without one), then the
    decision: from the UI's pause, or later from `baocao approve` when no UI can answer.
    Returns the version as decided and, when no code could be sent, the line saying so."""
    p = result.period
    log = get_run_logger()
    issue_codes_task(
        rt,
        row,
        p,
        now_vn(),
        completeness=result.completeness,
        timeliness=result.timeliness,
        notes=[n for n in (late, *coverage_notes(result, rt.report, rt.cfg)) if n],
    )
    codes_sent = deliver_outbox_task(rt, kinds=["approval"], period_code=p.code)
    problem = check_delivery(rt, "mã duyệt / approval codes", codes_sent, "approval", p)
    if problem:  # nobody holds a code: no pause, the draft waits for a rerun
        return row, problem
    if not can_pause():  # no UI to answer a pause: the decision comes from `baocao approve`
        log.warning(
            "%s v%d chờ duyệt / waits for approval: người duyệt đã nhận mã qua thư; chạy "
            "`baocao approve %s --report %s --by NGƯỜI_DUYỆT --code MÃ --number SỐ --date "
            "NGÀY_KÝ`, rồi publish lại",
            p.code,
            row.version,
            p.code,
            rt.report.id,
        )
        return row, None
    row = wait_for_approval(rt, row, result, late)
    if row.status != ReportStatus.APPROVED:
        log.warning(
            "%s v%d %s (%s): %s; bản nháp giữ nguyên, không gửi gì / draft kept, nothing sent",
            p.code,
            row.version,
            row.status,
            row.decided_by or "-",
            row.comment or "-",
        )
    return row, None


def report_artifact(rt: Runtime, result: Consolidated, row: RenderedReport) -> None:
    """The report on the run's Artifacts tab, headed by where the version stands and where
    its files are (written again at the end of the run, so it shows the run's outcome)."""
    names = output_names(rt.report, result.period, rt.cfg.body)
    text = Path(row.folder, names.md).read_text(encoding="utf-8")
    state = version_state(rt, row, result.period)
    create_markdown_artifact(
        key=artifact_key(rt, "report", result.period),
        markdown=artifact_heading(rt, row, result.period, state) + "\n\n---\n\n" + text,
        description=f"Phiên bản / version {row.version}: {state}; {row.folder}",
    )


def artifact_heading(rt: Runtime, row: RenderedReport, period: Period, state: str) -> str:
    """Status, number and date, and the files of the version (the stamped ones that go out)."""
    label = number_label(rt, row)
    files = ", ".join(f"`{name}`" for name in version_files(rt, row, period))
    return (
        f"**Tình trạng / status:** {state}  \n"
        f"**Số / number:** {label or 'chưa cấp số / not numbered'}  \n"
        f"**Phiên bản / version:** {row.version}  \n"
        f"**Tệp / files** (`{row.folder}`): {files or '-'}"
    )


def version_files(rt: Runtime, row: RenderedReport, period: Period) -> list[str]:
    """The files that go out: the copies stamped with the number, or the rendered ones."""
    names = output_names(rt.report, period, rt.cfg.body)
    sent = [names.docx, names.html, names.xlsx]
    if row.number:
        sent = [stamped_name(n, row.number) for n in sent]
    return [n for n in [*sent, names.md] if Path(row.folder, n).is_file()]


def version_state(rt: Runtime, row: RenderedReport, period: Period) -> str:
    """Where the version stands: sent (how many of its messages), approved, waiting for
    approval, sent back, no decision in time."""
    sent, total = report_deliveries(rt, row, period)
    if total and sent == total:
        return f"đã gửi / sent ({sent}/{total})"
    if total and not sent:
        return (
            f"chưa gửi được, {total} thư chờ gửi lại / not delivered yet, {total} message(s) "
            "retried by the next run"
        )
    if total:
        return (
            f"đã gửi {sent}/{total}, còn lại chờ gửi lại / {sent} of {total} sent, the rest "
            "retried by the next run"
        )
    return {
        ReportStatus.APPROVED: "đã duyệt, chưa gửi / approved, not sent yet",
        ReportStatus.SENT_BACK: f"bị trả lại / sent back ({row.decided_by}: {row.comment or '-'})",
        ReportStatus.TIMED_OUT: "hết hạn duyệt, không gửi / no decision in time, not sent",
    }.get(
        row.status,
        "chờ duyệt / waiting for approval" if rt.schedule.approval_required else "bản nháp / draft",
    )


def report_deliveries(rt: Runtime, row: RenderedReport, period: Period) -> tuple[int, int]:
    """(reached, addressed): recipients this version reached, of those it was queued for
    (a forced resend counts a recipient once)."""
    prefix = f"report:{rt.report.id}:{period.code}:v{row.version}:"
    with session_scope(rt.engine) as s:
        rows = s.exec(
            select(OutboxMessage.recipient, OutboxMessage.address, OutboxMessage.status).where(
                OutboxMessage.key.startswith(prefix)
            )
        ).all()
    reached = {(r, a) for r, a, st in rows if st == DeliveryStatus.SENT.value}
    return len(reached), len({(r, a) for r, a, _ in rows})
