"""Render the report: the definition's texts filled with the consolidated figures become one
`Document`, written as Markdown and HTML (Jinja2 templates in templates/) and as .docx in
the Decree 30/2020 layout; the figures go to an .xlsx with Phụ lục 01 and 02."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, UndefinedError
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from baocao import vnformat
from baocao.config import Body, ReportDef
from baocao.document import (
    Block,
    Document,
    Layout,
    Run,
    Signer,
    parse_inline,
    plain,
    verbatim,
)
from baocao.docx_writer import write_docx
from baocao.periods import Period
from baocao.templating import render_string
from tasks.consolidate import Consolidated, Coverage

FILES = ("report.md", "report.html", "report.docx", "phu-luc.xlsx")


class RenderError(Exception):
    """A text of the definition refers to a figure that does not exist."""


def format_figures(
    values: dict[str, object],
    report: ReportDef,
    coverage: dict[str, Coverage] | None = None,
) -> dict[str, str]:
    """Each figure as the report prints it: `112.108`, `2.266,020`, `43,5%`, `01`, `21/02/2022`.

    With `coverage`, a figure summed over part of its owners (or a percentage computed from
    one) says so: `1.250 (số liệu của 9/11 đơn vị)`; the raw value (`v.`) stays a number."""
    out: dict[str, str] = {}
    inds = report.indicator_map
    derived = {d.code: d for d in report.derived}
    for code, value in values.items():
        if value is None:
            continue
        ind = inds.get(code)
        if ind is None:  # derived percentage, with its own decimals
            d = derived.get(code)
            out[code] = vnformat.percent(value, d.decimals if d else 1)
        elif ind.type == "percent":
            out[code] = vnformat.percent(value, ind.decimals or 1)
        elif ind.type == "date":
            out[code] = vnformat.date(value)
        elif ind.type == "text":
            out[code] = verbatim(str(value))  # a unit's words: printed as typed
        else:
            out[code] = vnformat.number(value, ind.decimals, ind.pad)
        cov = (coverage or {}).get(code)
        summed = ind is None or ind.aggregate == "sum"
        if cov is not None and summed and not cov.complete:
            out[code] += f" {coverage_suffix(cov)}"
    return out


def coverage_suffix(cov: Coverage) -> str:
    """`(số liệu của 9/11 đơn vị)`: what a partial figure adds where it is printed."""
    return f"(số liệu của {cov.text} đơn vị)"


def _period_view(p: Period) -> dict:
    return {
        "code": p.code,
        "label": p.label,
        "lower": p.label[0].lower() + p.label[1:],
        "upper": p.label.upper(),
        "year": p.year,
    }


def text_context(result: Consolidated, report: ReportDef, body: Body) -> dict:
    """What the definition's texts may use: f (formatted; a partial sum says its coverage),
    v (raw), t (texts), p (plans), c (coverage: `c.x.complete`, `c.x.text` "9/11")."""
    plans = report.plans.get(result.period.year, {})
    raw = {
        k: (float(v) if isinstance(v, Decimal) else v)
        for k, v in result.values.items()
        if v is not None
    }
    texts = {  # a unit's words are printed as typed; the definition's default is markup
        i.code: verbatim(str(result.values[i.code]))
        if result.values.get(i.code)
        else i.default or ""
        for i in report.indicators
        if i.type == "text"
    }
    plan_fmt = {k: vnformat.number(v, report.indicator_map[k].decimals) for k, v in plans.items()}
    return {
        "f": format_figures(result.values, report, result.coverage),
        "v": raw,
        "t": texts,
        "p": plan_fmt,
        "c": _coverage_view(result, report),
        "period": _period_view(result.period),
        "next_period": _period_view(result.period.next()),
        "body": body,
    }


def _coverage_view(result: Consolidated, report: ReportDef) -> dict[str, Coverage]:
    """`c.<code>` for every indicator and derived figure; a result without coverage (built
    by hand) counts as complete."""
    codes = [i.code for i in report.indicators] + [d.code for d in report.derived]
    return {k: result.coverage.get(k) or Coverage(1, 1) for k in codes}


def _fill(env: Environment, text: str, ctx: dict, where: str) -> str:
    try:
        filled = render_string(env, text, **ctx)
    except UndefinedError as exc:
        raise RenderError(
            f"{where}: {exc.message}; kiểm tra mã chỉ tiêu trong định nghĩa báo cáo "
            "hoặc chờ đơn vị gửi số liệu"
        ) from None
    return re.sub(r"\s+", " ", filled).strip()


def _block(text: str) -> Block:
    for prefix, kind in (("> ", "note"), ("- ", "bullet"), ("+ ", "subbullet")):
        if text.startswith(prefix):
            body = text[len(prefix) :] if kind == "note" else text
            return Block(kind, parse_inline(body))
    return Block("paragraph", parse_inline(text))


def build_document(
    env: Environment,
    result: Consolidated,
    report: ReportDef,
    body: Body,
    report_date: dt.date,
    number: str = "",
) -> Document:
    """The report as a `Document`, every text of the definition filled with figures."""
    ctx = text_context(result, report, body)
    blocks: list[Block] = []
    if report.preamble:
        blocks.append(_block(_fill(env, report.preamble, ctx, "preamble")))
    for n, section in enumerate(report.sections):
        heading = plain(_fill(env, section.heading, ctx, f"sections[{n}].heading"))
        blocks.append(
            Block("heading1" if section.level == 1 else "heading2", (Run(heading, bold=True),))
        )
        for k, paragraph in enumerate(section.paragraphs):
            blocks.append(_block(_fill(env, paragraph, ctx, f"sections[{n}].paragraphs[{k}]")))
    if report.closing:
        blocks.append(_block(_fill(env, report.closing, ctx, "closing")))
    footnotes = {
        n: parse_inline(_fill(env, t, ctx, f"footnotes.{n}")) for n, t in report.footnotes.items()
    }
    labels = [r.label for r in report.recipients]
    recipients = tuple(
        f"{lab}{'.' if i == len(labels) - 1 else ';'}" for i, lab in enumerate(labels)
    )
    return Document(
        body_lines=body.name_lines,
        number=f"Số: {number or '      '}/{report.symbol}",
        motto=body.motto,
        place_date=f"{body.place}, {vnformat.long_date(report_date)}",
        doc_type="BÁO CÁO",
        title=plain(_fill(env, report.title, ctx, "title")),
        blocks=tuple(blocks),
        footnotes=footnotes,
        recipients=recipients,
        signer=Signer(report.signer.authority, report.signer.title, report.signer.name),
        layout=Layout(**report.layout.model_dump()),  # the same names: the config's page rules
    )


def render_title(env: Environment, result: Consolidated, report: ReportDef, body: Body) -> str:
    """The report's title for this period ("Kết quả ... Quý I/2022 ...")."""
    return plain(_fill(env, report.title, text_context(result, report, body), "title"))


def content_digest(doc: Document, result: Consolidated) -> str:
    """What makes a version: the text and the figures, not the date it was printed."""
    payload = {
        "title": doc.title,
        "blocks": [b.text for b in doc.blocks],
        "footnotes": {k: "".join(r.text for r in v) for k, v in doc.footnotes.items()},
        "figures": {k: str(v) for k, v in sorted(result.values.items())},
    }
    return hashlib.sha256(
        json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    ).hexdigest()


def write_appendices(result: Consolidated, report: ReportDef, path: Path) -> Path:
    """Phụ lục 01 (district figures with plan and previous period) and 02 (by unit, with
    completeness and timeliness) as one workbook."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Phụ lục 01"
    ws.append([f"PHỤ LỤC 01: SỐ LIỆU TỔNG HỢP {result.period.label.upper()}"])
    ws.append(["Mã", "Chỉ tiêu", "Đơn vị tính", "Kết quả", "Kế hoạch năm", "Kỳ trước", "Tăng/giảm"])
    for r in result.table.itertuples():
        ws.append(
            [
                r.code,
                r.label,
                r.unit,
                _cell(r.value),
                _cell(r.plan),
                _cell(r.previous),
                _cell(r.change),
            ]
        )
    ws2 = wb.create_sheet("Phụ lục 02")
    ws2.append(
        [
            f"PHỤ LỤC 02: SỐ LIỆU THEO ĐƠN VỊ {result.period.label.upper()} - "
            f"đã nhận {result.completeness} đơn vị, đúng hạn {result.timeliness}"
        ]
    )
    status = result.status.set_index("unit")
    codes = [i.code for i in report.indicators if i.type != "text"]
    ws2.append(["Mã đơn vị", "Đơn vị", "Trạng thái", "Phiên bản", "Đúng hạn", *codes])
    for unit, row in status.iterrows():
        figures = result.by_unit.loc[unit] if unit in result.by_unit.index else {}
        ws2.append(
            [
                unit,
                row["name"],
                row["state"],
                row["version"],
                {True: "có", False: "trễ"}.get(row["on_time"], ""),
                *[_cell(figures.get(c)) if len(figures) else None for c in codes],
            ]
        )
    for sheet in (ws, ws2):
        sheet["A1"].font = Font(bold=True, size=13)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        sheet.column_dimensions["B"].width = 48
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _cell(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    return value


def write_report(
    env: Environment, doc: Document, result: Consolidated, report: ReportDef, folder: Path
) -> list[Path]:
    """All output files of one version into `folder` (written once: existing files stay)."""
    folder.mkdir(parents=True, exist_ok=True)
    md, html, docx, xlsx = (folder / name for name in FILES)
    context = {"doc": doc, "completeness": result.completeness, "timeliness": result.timeliness}
    md.write_text(env.get_template("report.md.j2").render(**context), encoding="utf-8")
    html.write_text(env.get_template("report.html.j2").render(**context), encoding="utf-8")
    write_docx(doc, docx)
    write_appendices(result, report, xlsx)
    return [md, html, docx, xlsx]
