"""Publish a period: consolidate, render a version of the report (a new version only when the
text or figures changed), and queue the report for every recipient with a contact."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from baocao import crud
from baocao.db import session_scope
from baocao.models import RenderedReport
from baocao.runtime import Runtime
from tasks.consolidate import Consolidated
from tasks.notify import compose, messages_for
from tasks.render import FILES, build_document, content_digest, render_title, write_report


def render_version(
    rt: Runtime, result: Consolidated, report_date: dt.date, now: dt.datetime
) -> tuple[RenderedReport, bool]:
    """The stored version for this content, rendering and recording it if it is new."""
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, report_date)
    digest = content_digest(doc, result)
    with session_scope(rt.engine) as s:
        period_row = crud.get_period(s, report_id=rt.report.id, code=result.period.code)
        latest = crud.latest_report(s, period_id=period_row.id)
    if latest and latest.content_sha256 == digest:
        if not all((Path(latest.folder) / f).is_file() for f in FILES):  # restore lost files
            write_report(rt.env, doc, result, rt.report, Path(latest.folder))
        return latest, False
    version = (latest.version + 1) if latest else 1
    folder = (rt.settings.reports_dir / rt.report.id / result.period.code / f"v{version}").resolve()
    files = write_report(rt.env, doc, result, rt.report, folder)
    row = RenderedReport(
        period_id=period_row.id,
        version=version,
        content_sha256=digest,
        folder=str(folder),
        files=json.dumps([f.name for f in files]),
        created_at=now,
    )
    with session_scope(rt.engine) as s:
        crud.add_report(s, row=row)
    return row, True


def report_messages(
    rt: Runtime, result: Consolidated, row: RenderedReport, title: str, force_tag: str | None = None
) -> list[dict]:
    folder = Path(row.folder)
    attachments = [str(folder / "report.docx"), str(folder / "phu-luc.xlsx")]
    out: list[dict] = []
    for rec in rt.report.recipients:
        if not rec.contacts:
            continue
        subject, body = compose(
            rt.env,
            "messages/report.txt",
            body=rt.cfg.body,
            period=result.period,
            report=rt.report,
            recipient=rec.label,
            title=title,
            files=[Path(a).name for a in attachments],
            completeness=result.completeness,
            timeliness=result.timeliness,
        )
        out += messages_for(
            key=f"report:{rt.report.id}:{result.period.code}:v{row.version}:{rec.label}",
            kind="report",
            period_code=result.period.code,
            unit_code=None,
            recipient=rec.label,
            contacts=rec.contacts,
            subject=subject,
            body=body,
            attachments=attachments,
            force_tag=force_tag,
        )
    return out


def queue_report(
    rt: Runtime, result: Consolidated, row: RenderedReport, force_tag: str | None = None
) -> list[str]:
    title = render_title(rt.env, result, rt.report, rt.cfg.body)
    with session_scope(rt.engine) as s:
        return crud.enqueue(s, messages=report_messages(rt, result, row, title, force_tag))


@task(name="render-report", cache_policy=NO_CACHE)
def render_version_task(
    rt: Runtime, result: Consolidated, report_date: dt.date, now: dt.datetime
) -> tuple[RenderedReport, bool]:
    """Render the report, as a new version only if its content changed."""
    return render_version(rt, result, report_date, now)


@task(name="queue-report", cache_policy=NO_CACHE)
def queue_report_task(
    rt: Runtime, result: Consolidated, row: RenderedReport, force_tag: str | None = None
) -> list[str]:
    """Queue the report for its recipients (once per version unless forced)."""
    return queue_report(rt, result, row, force_tag)
