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
from baocao.notices import Notice, queue_notices
from baocao.runtime import Runtime
from tasks.consolidate import Consolidated
from tasks.messages import report_notice
from tasks.render import (
    build_document,
    content_digest,
    output_names,
    render_title,
    write_report,
)


def render_version(
    rt: Runtime, result: Consolidated, report_date: dt.date, now: dt.datetime
) -> tuple[RenderedReport, bool]:
    """The stored version for this content, rendering and recording it if it is new."""
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, report_date)
    digest = content_digest(doc, result)
    with session_scope(rt.engine) as s:
        period_row = crud.get_period(s, report_id=rt.report.id, code=result.period.code)
        latest = crud.latest_report(s, period_id=period_row.id)
    names = output_names(rt.report, result.period, rt.cfg.body).all
    if latest and latest.content_sha256 == digest:
        if not all((Path(latest.folder) / f).is_file() for f in names):  # restore lost files
            write_report(
                rt.env, doc, result, rt.report, Path(latest.folder), rt.cfg.body, report_date
            )
        return latest, False
    version = (latest.version + 1) if latest else 1
    folder = (rt.settings.reports_dir / rt.report.id / result.period.code / f"v{version}").resolve()
    files = write_report(rt.env, doc, result, rt.report, folder, rt.cfg.body, report_date)
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


def report_notices(
    rt: Runtime, result: Consolidated, row: RenderedReport, title: str, force_tag: str | None = None
) -> list[Notice]:
    """The report to every recipient of Nơi nhận that has a contact: the .docx and its appendix
    attached, never the office's status workbook."""
    folder = Path(row.folder)
    names = output_names(rt.report, result.period, rt.cfg.body)
    attachments = [str(folder / name) for name in names.sent]
    return [
        report_notice(
            rt,
            period=result.period,
            version=row.version,
            recipient=rec.label,
            contacts=rec.contacts,
            title=title,
            attachments=attachments,
            completeness=result.completeness,
            timeliness=result.timeliness,
            force_tag=force_tag,
        )
        for rec in rt.report.recipients
        if rec.contacts
    ]


def queue_report(
    rt: Runtime, result: Consolidated, row: RenderedReport, force_tag: str | None = None
) -> list[str]:
    title = render_title(rt.env, result, rt.report, rt.cfg.body)
    with session_scope(rt.engine) as s:
        return queue_notices(s, report_notices(rt, result, row, title, force_tag))


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
