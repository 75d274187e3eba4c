"""Publish a period: consolidate, render a version of the report (a new version only when the
text or figures changed), and queue the report for every recipient with a contact."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import select

from baocao import crud, vnformat
from baocao.db import session_scope
from baocao.document import Document
from baocao.docx_writer import write_docx
from baocao.models import DeliveryStatus, OutboxMessage, RenderedReport
from baocao.notices import Notice, queue_notices
from baocao.periods import as_vn
from baocao.runtime import Runtime
from tasks.consolidate import Consolidated
from tasks.explain import sources_name, write_sources
from tasks.messages import report_notice
from tasks.render import (
    build_document,
    content_digest,
    format_figures,
    output_names,
    render_title,
    write_appendices,
    write_report,
)

FIGURES = "figures.json"  # the consolidated values of a version, to tell what a later one changed


def write_figures(result: Consolidated, folder: Path) -> Path:
    """The version's consolidated values as JSON in its folder (what changed is told from it)."""
    path = folder / FIGURES
    values = {k: (None if v is None else str(v)) for k, v in sorted(result.values.items())}
    path.write_text(json.dumps(values, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _figures(folder: Path) -> dict[str, str | None]:
    path = folder / FIGURES
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write_version(
    rt: Runtime, doc: Document, result: Consolidated, folder: Path, report_date: dt.date
) -> list[Path]:
    """A version's files: the report, its appendix and status, and the office's HTML whose
    figures link to the sources page written beside it (neither is ever sent)."""
    body = rt.cfg.body
    linked = build_document(rt.env, result, rt.report, body, report_date, link_figures=True)
    page = sources_name(output_names(rt.report, result.period, body).html)
    files = write_report(
        rt.env, doc, result, rt.report, folder, body, report_date, linked=linked, sources_page=page
    )
    return [*files, write_sources(rt, result, folder)]


def render_version(
    rt: Runtime, result: Consolidated, report_date: dt.date, now: dt.datetime
) -> tuple[RenderedReport, bool]:
    """The stored version for this content, rendering and recording it if it is new."""
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, report_date)
    digest = content_digest(doc, result)
    with session_scope(rt.engine) as s:
        period_row = crud.get_period(s, report_id=rt.report.id, code=result.period.code)
        latest = crud.latest_report(s, period_id=period_row.id)
    names = output_names(rt.report, result.period, rt.cfg.body)
    expected = [*names.all, sources_name(names.html)]
    if latest and latest.content_sha256 == digest:
        if not all((Path(latest.folder) / f).is_file() for f in expected):  # restore lost files
            _write_version(rt, doc, result, Path(latest.folder), report_date)
        if not (Path(latest.folder) / FIGURES).is_file():
            write_figures(result, Path(latest.folder))
        return latest, False
    version = (latest.version + 1) if latest else 1
    folder = (rt.settings.reports_dir / rt.report.id / result.period.code / f"v{version}").resolve()
    files = _write_version(rt, doc, result, folder, report_date)
    write_figures(result, folder)
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


def _file(row: RenderedReport, suffix: str) -> str | None:
    return next((f for f in json.loads(row.files) if f.endswith(suffix)), None)


def stamped_name(name: str, number: str) -> str:
    """`report.docx` -> `report-so-25.docx`: the copy that carries the issued number."""
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-so-{number}{dot}{ext}"


def stamped_files(rt: Runtime, result: Consolidated, row: RenderedReport) -> dict[str, Path]:
    """The .docx, .html and appendix of this version with the decision's Số and signing date,
    as copies in the version's folder (written once; the version's own files and its content
    digest stay as rendered). Suffix -> path."""
    folder = Path(row.folder)
    names = output_names(rt.report, result.period, rt.cfg.body)
    out = {
        ".docx": folder / stamped_name(names.docx, row.number),
        ".html": folder / stamped_name(names.html, row.number),
        ".xlsx": folder / stamped_name(names.xlsx, row.number),
    }
    if all(p.is_file() for p in out.values()):
        return out
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, row.signed_on, number=row.number)
    if not out[".docx"].is_file():
        write_docx(doc, out[".docx"], author=rt.cfg.body.short_name, date=row.signed_on)
    if not out[".html"].is_file():
        context = {"doc": doc, "completeness": result.completeness, "timeliness": result.timeliness}
        out[".html"].write_text(
            rt.env.get_template("report.html.j2").render(**context), encoding="utf-8"
        )
    if not out[".xlsx"].is_file():  # its heading: "(Kèm theo Báo cáo số 25/BC-UBND ngày ...)"
        write_appendices(result, rt.report, out[".xlsx"], doc, rt.cfg.body, row.signed_on)
    return out


def number_label(rt: Runtime, row: RenderedReport) -> str:
    """ "25/BC-UBND ngày 05/04/2022" ("" for a version without a number)."""
    if not row.number:
        return ""
    day = f" ngày {vnformat.date(row.signed_on)}" if row.signed_on else ""
    return f"{row.number}/{rt.report.symbol}{day}"


@dataclass(frozen=True)
class Replaced:
    """The earlier version of the period that went out, which this one replaces."""

    row: RenderedReport
    sent_on: dt.date | None


def dispatched_before(rt: Runtime, row: RenderedReport, period_code: str) -> Replaced | None:
    """The latest earlier version of the period whose report reached a recipient."""
    with session_scope(rt.engine) as s:
        earlier = s.exec(
            select(RenderedReport)
            .where(RenderedReport.period_id == row.period_id, RenderedReport.version < row.version)
            .order_by(RenderedReport.version.desc())
        ).all()
        for old in earlier:
            prefix = f"report:{rt.report.id}:{period_code}:v{old.version}:"
            sent = s.exec(
                select(OutboxMessage.sent_at).where(
                    OutboxMessage.key.startswith(prefix),
                    OutboxMessage.status == DeliveryStatus.SENT.value,
                )
            ).all()
            if sent:
                day = min((t for t in sent if t), default=None)
                return Replaced(old, as_vn(day).date() if day else None)
    return None


def changed_figures(rt: Runtime, old: Path, new: Path) -> list[str]:
    """What changed from the version in `old` to the one in `new`, figure by figure, in the
    report's order: "Tổng chi ngân sách Nhà nước: 40.826 → 40.898 triệu đồng"."""
    before, after = _figures(old), _figures(new)
    report = rt.report
    order = [i.code for i in report.indicators] + [d.code for d in report.derived]
    order += sorted((set(before) | set(after)) - set(order))
    labels = {i.code: (i.label, i.unit) for i in report.indicators}
    labels |= {d.code: (d.label, "") for d in report.derived}
    lines = []
    for code in order:
        a, b = before.get(code), after.get(code)
        if a == b:
            continue
        fa, fb = (_shown(report, code, v) for v in (a, b))
        label, unit = labels.get(code, (code, ""))
        lines.append(f"{label}: {fa} → {fb}{' ' + unit if unit and unit != '%' else ''}")
    return lines


def _shown(report, code: str, text: str | None) -> str:
    if text is None:
        return "(trống)"
    ind = report.indicator_map.get(code)
    if ind is not None and ind.type == "text":
        return f"“{text}”"
    return format_figures({code: _value(text)}, report).get(code, text)


def _value(text: str):
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return text


def report_notices(
    rt: Runtime, result: Consolidated, row: RenderedReport, title: str, force_tag: str | None = None
) -> list[Notice]:
    """The report to every recipient of Nơi nhận that has a contact: the copies stamped with
    the decision's number (or, for a courtesy copy, the version as rendered), marked as
    replacing the version sent before with what changed."""
    folder = Path(row.folder)
    courtesy = not row.number
    if courtesy and not rt.report.approval.courtesy_copy:
        raise ValueError(
            f"{result.period.code} v{row.version}: không gửi báo cáo với Số để trống: bật "
            "approval_required trong schedule.yaml để người duyệt cấp số, hoặc khai báo "
            "approval.courtesy_copy: true nếu thư chỉ là bản gửi để biết / the report has no "
            "number; turn approval on, or declare the mail a courtesy copy"
        )
    stamped = {} if courtesy else stamped_files(rt, result, row)
    names = output_names(rt.report, result.period, rt.cfg.body)  # never the status workbook
    docx = stamped.get(".docx") or folder / names.docx
    xlsx = stamped.get(".xlsx") or folder / names.xlsx
    attachments = [str(docx), str(xlsx)]
    replaced = dispatched_before(rt, row, result.period.code)
    replaces = changes = None
    if replaced is not None:
        replaces = {
            "number": number_label(rt, replaced.row).split(" ngày ")[0]
            or f"phiên bản {replaced.row.version}",
            "sent_on": vnformat.date(replaced.sent_on) if replaced.sent_on else "",
        }
        changes = changed_figures(rt, Path(replaced.row.folder), folder)
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
            number=number_label(rt, row),
            replaces=replaces,
            changes=changes,
        )
        for rec in rt.report.recipients
        if rec.contacts
    ]


def queue_report(
    rt: Runtime, result: Consolidated, row: RenderedReport, force_tag: str | None = None
) -> list[str]:
    title = render_title(rt.env, result, rt.report, rt.cfg.body)
    notices = report_notices(rt, result, row, title, force_tag)
    with session_scope(rt.engine) as s:
        return queue_notices(s, notices)


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
