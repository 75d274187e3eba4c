"""Render the report: the definition's texts filled with the consolidated figures become one
`Document`, written as Markdown and HTML (Jinja2 templates in templates/) and as .docx in
the Decree 30/2020 layout; the figures go to an .xlsx with Phụ lục 01 and 02."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from copy import copy
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, UndefinedError
from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter

from baocao import vnformat
from baocao.config import Body, ReportDef
from baocao.document import (
    Block,
    Document,
    Layout,
    Run,
    Signer,
    mark_figure,
    parse_inline,
    plain,
    verbatim,
)
from baocao.docx_writer import write_docx
from baocao.errors import RenderError
from baocao.periods import Period
from baocao.templating import render_string
from tasks.consolidate import Consolidated, Coverage


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


def text_context(
    result: Consolidated, report: ReportDef, body: Body, link_figures: bool = False
) -> dict:
    """What the definition's texts may use: f (formatted; a partial sum says its coverage),
    v (raw), t (texts), p (the year's plans), c (coverage: `c.x.complete`, `c.x.text`
    "9/11"), d (the period's facts). With `link_figures` each f value carries its code
    (the office's linked HTML)."""
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
    plan_fmt = {
        k: vnformat.number(v, report.indicator_map[k].decimals) for k, v in result.plans.items()
    }
    figures = format_figures(result.values, report, result.coverage)
    if link_figures:
        figures = {k: mark_figure(k, v) for k, v in figures.items()}
    return {
        "f": figures,
        "v": raw,
        "t": texts,
        "p": plan_fmt,
        "c": _coverage_view(result, report),
        "d": dict(result.facts),
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
    link_figures: bool = False,
) -> Document:
    """The report as a `Document`, every text of the definition filled with figures (marked
    with their codes for the office's linked HTML when `link_figures`)."""
    ctx = text_context(result, report, body, link_figures)
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


def _slug(text: str) -> str:
    """ASCII-safe piece of a file name: `UBND huyện Sơn Tây` -> `UBND-huyen-Son-Tay`."""
    text = text.replace("đ", "d").replace("Đ", "D")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join(re.findall(r"[A-Za-z0-9]+", ascii_text))


def _report_short(report: ReportDef) -> str:
    """The report's short name: the abbreviation its name ends with in brackets ("công tác cải
    cách hành chính (CCHC)" -> `CCHC`), else its id in capitals."""
    m = re.search(r"\(([^()]+)\)\s*$", report.name)
    return _slug(m.group(1)) if m else _slug(report.id).upper()


@dataclass(frozen=True)
class OutputNames:
    """The file names of one version: `BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay.docx` and the
    like. `sent` are the files that go to the recipients; `status` is the office's own."""

    md: str
    html: str
    docx: str
    xlsx: str
    status: str

    @property
    def all(self) -> tuple[str, ...]:
        return (self.md, self.html, self.docx, self.xlsx, self.status)

    @property
    def sent(self) -> tuple[str, str]:
        """What a report message carries: the .docx and its appendix, never the status."""
        return (self.docx, self.xlsx)


def output_names(report: ReportDef, period: Period, body: Body) -> OutputNames:
    """File names carrying the report, the period and the body, ASCII only (a mail client or a
    document system on any computer keeps them): `BC-<report>-<period>-<body>.<ext>`."""
    stem = f"BC-{_report_short(report)}-{_slug(period.label)}-{_slug(body.short_name)}"
    return OutputNames(
        md=f"{stem}.md",
        html=f"{stem}.html",
        docx=f"{stem}.docx",
        xlsx=f"{stem}-Phu-luc.xlsx",
        status=f"Tinh-hinh-nop-{_report_short(report)}-{_slug(period.label)}.xlsx",
    )


# The appendix's cells hold the figures as the report prints them (`112.108`, `2.266,020`,
# `43,5%`, `21/02/2022`), as text. An Excel number format cannot do this with numbers on
# every computer: `#,##0` and `0.000` use the separators of the reader's regional settings,
# so the same cell reads 112,108 and 2,266.020 on an English-locale Windows (most offices'),
# and a format with a literal dot cannot show decimals. A printed appendix must read the same
# everywhere, so its cells are text, right-aligned; the figures as numbers stay in the
# database and in each unit's form.

_THIN = Side(style="thin")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_FONT = "Times New Roman"
_FIGURE = re.compile(r"[+-]?[\d.,]+%?|\d\d/\d\d/\d{4}")  # right-aligned as figures are


def _figure(value) -> bool:
    """Whether a cell's value reads as a figure (right-aligned)."""
    return isinstance(value, str) and _FIGURE.fullmatch(value) is not None


def _fmt(value, kind: str = "integer", decimals: int = 0, pad: int = 0) -> str | None:
    """One figure as the report prints it, or None for a blank cell."""
    value = _cell(value)
    if value is None or value == "":
        return None
    if kind == "date":
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value[:10])
            except ValueError:
                return value
        return vnformat.date(value)
    if kind == "text" or isinstance(value, str):
        return str(value)
    if kind == "percent":
        return vnformat.percent(value, decimals or 1)
    return vnformat.number(value, decimals, pad)


def _kind(report: ReportDef, code: str) -> tuple[str, int, int]:
    ind = report.indicator_map.get(code)
    if ind is not None:
        return ind.type, ind.decimals, ind.pad
    derived = {d.code: d for d in report.derived}.get(code)
    return "percent", (derived.decimals if derived else 1), 0


def _owner_codes(ind, result: Consolidated) -> set[str]:
    """The units that owe `ind`: named owners, those that sent it and those still owing it."""
    column = result.by_unit.get(ind.code)
    sent = set(column.dropna().index) if column is not None else set()
    owing = {unit for code, unit in result.missing if code == ind.code}
    return {u for u in ind.owners if not u.startswith("@")} | sent | owing


def _change(value, kind: str, decimals: int) -> str | None:
    """`+12`, `-3,5`: the change from the previous period (points for a percentage)."""
    value = _cell(value)
    if value is None or kind == "date":
        return None
    text = vnformat.number(value, decimals if kind != "percent" else (decimals or 1))
    return f"+{text}" if value > 0 else text


def appendix_reference(doc: Document, body: Body) -> str:
    """`(Kèm theo Báo cáo số 45/BC-UBND ngày 05/4/2022 của UBND huyện Sơn Tây)`: the number
    and date the `Document` carries, `…` while it has no number yet."""
    number = doc.number.removeprefix("Số:").strip()
    head, _, symbol = number.rpartition("/")
    shown = f"{head.strip() or '…'}/{symbol}" if symbol else (number or "…")
    m = re.search(r"ngày (\d+) tháng (\d+) năm (\d+)", doc.place_date)
    day = f"{m.group(1)}/{m.group(2)}/{m.group(3)}" if m and head.strip() else "…"
    return f"(Kèm theo Báo cáo số {shown} ngày {day} của {body.short_name})"


class _Styles:
    """The few cell styles of an appendix sheet, each built once and then stamped on every cell
    that wears it.

    Assigning a `Font` or `Alignment` to a cell makes openpyxl hash it against the workbook's
    style lists, which at 10,000 units was most of the render time. So the first cell of each
    style is styled through openpyxl's attributes and the others get a copy of its style
    indices (`StyleArray`): copying `_style` is openpyxl's own idiom for copying a style."""

    def __init__(self, ws) -> None:
        self._ws = ws
        self._first: dict[tuple, Cell] = {}

    def cell(
        self,
        value,
        *,
        size: int = 11,
        bold: bool = False,
        italic: bool = False,
        horizontal: str = "center",
        border: bool = True,
        number_format: str | None = None,
    ) -> Cell:
        """A cell of the sheet holding `value`, not yet placed: Times New Roman, vertically
        centred and wrapped, bordered unless `border` is False, with `number_format` if given."""
        key = (size, bold, italic, horizontal, border, number_format)
        first = self._first.get(key)
        if first is not None:
            return Cell(self._ws, value=value, style_array=copy(first._style))
        cell = self._first[key] = Cell(self._ws, value=value)
        cell.font = Font(name=_FONT, bold=bold, italic=italic, size=size)
        if border:
            cell.border = _BORDER
        cell.alignment = Alignment(horizontal=horizontal, vertical="center", wrap_text=True)
        if number_format is not None:
            cell.number_format = number_format
        return cell


def _sheet(ws, heading: tuple[str, str, str], headers: list[str], rows: list[list], widths):
    """A printable appendix sheet, filled from its first row: the Decree 30 heading, a bordered
    table whose header row is repeated on every page, landscape A4 fitted to the page width."""
    last = get_column_letter(len(headers))
    # `ws.append` places the cells `styles` made for this sheet on the next row, one row each
    styles = _Styles(ws)
    for text, bold, italic, size in (
        (heading[0], True, False, 13),
        (heading[1], True, False, 13),
        (heading[2], False, True, 12),
    ):
        ws.append([styles.cell(text, size=size, bold=bold, italic=italic, border=False)])
        ws.merge_cells(f"A{ws.max_row}:{last}{ws.max_row}")
    ws.row_dimensions[2].height = 36
    header_row = 5
    ws.append([])  # row 4 stays empty
    ws.append([styles.cell(text, bold=True) for text in headers])
    for row in rows:
        ws.append(
            [
                styles.cell(
                    value,
                    horizontal="center" if col == 1 else ("right" if _figure(value) else "left"),
                    number_format="@",  # text: shown as written on every computer
                )
                for col, value in enumerate(row, start=1)
            ]
        )
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as it takes
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.5
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.freeze_panes = ws.cell(row=header_row + 1, column=3)


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Python's cycle collector held off while a workbook is built and saved.

    openpyxl makes a few objects per cell, and each burst of new objects sets the collector
    off on everything the process holds, again and again: at 10,000 units that was about a
    third of the time. Nothing made here needs it (it runs again once the workbook is out)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _properties(wb: Workbook, title: str, body: Body, report_date: dt.date | None) -> None:
    wb.properties.creator = body.short_name
    wb.properties.lastModifiedBy = body.short_name
    wb.properties.title = title
    wb.properties.language = "vi-VN"
    if report_date is not None:
        moment = dt.datetime.combine(report_date, dt.time(8, 0))
        wb.properties.created = moment
        wb.properties.modified = moment


@_cycle_collection_paused()
def write_appendices(
    result: Consolidated,
    report: ReportDef,
    path: Path,
    doc: Document,
    body: Body,
    report_date: dt.date | None = None,
) -> Path:
    """What goes with the report: Phụ lục 01 (the district's figures with the year's plan, the
    previous period and the change) and Phụ lục 02 (each unit's figures), labels and units of
    measure in the headers, figures as the report prints them, ready to print."""
    period = result.period
    reference = appendix_reference(doc, body)
    wb = Workbook()
    ws = wb.active
    ws.title = "Phụ lục 01"
    rows = []
    for n, r in enumerate(result.table.itertuples(), start=1):
        kind, decimals, pad = _kind(report, r.code)
        rows.append(
            [
                n,
                r.label,
                r.unit,
                _fmt(r.value, kind, decimals, pad),
                _fmt(r.plan, "integer" if kind == "percent" else kind, decimals),
                _fmt(r.previous, kind, decimals, pad),
                _change(r.change, kind, decimals),
            ]
        )
    _sheet(
        ws,
        (
            "Phụ lục 01",
            f"SỐ LIỆU TỔNG HỢP {period.label.upper()} CỦA {body.short_name.upper()}",
            reference,
        ),
        [
            "TT",
            "Chỉ tiêu",
            "Đơn vị tính",
            f"Kết quả {period.label}",
            f"Kế hoạch năm {period.year}",
            f"Kỳ trước ({period.previous().label})",
            "Tăng (+), giảm (-) so với kỳ trước",
        ],
        rows,
        (6, 55, 14, 16, 16, 16, 16),
    )

    # Phụ lục 02: the figures the district adds up from its units, one row per unit that owns
    # one and the total as in Phụ lục 01 (a figure one office reports is in Phụ lục 01 only,
    # and a few columns print legibly on one page width)
    ws2 = wb.create_sheet("Phụ lục 02")
    inds = [i for i in report.indicators if i.aggregate == "sum"] or [
        i for i in report.indicators if i.type != "text"
    ]
    names = dict(zip(result.status["unit"], result.status["name"], strict=True))
    owners = {u for i in inds for u in _owner_codes(i, result)}
    # each unit's figures as a plain dict, taken from the frame once rather than row by row
    by_unit = result.by_unit.reindex(columns=[i.code for i in inds]).to_dict("index")
    rows = []
    for n, unit in enumerate([u for u in result.expected if u in owners], start=1):
        figures = by_unit.get(unit)
        rows.append(
            [
                n,
                names.get(unit, unit),
                *[
                    _fmt(figures.get(i.code), i.type, i.decimals, i.pad)
                    if figures is not None
                    else None
                    for i in inds
                ],
            ]
        )
    rows.append(
        [
            None,
            "Tổng cộng",
            *[_fmt(result.values.get(i.code), i.type, i.decimals, i.pad) for i in inds],
        ]
    )
    headers = ["TT", "Đơn vị", *[f"{i.label} ({i.unit})" if i.unit else i.label for i in inds]]
    _sheet(
        ws2,
        ("Phụ lục 02", f"SỐ LIỆU THEO ĐƠN VỊ {period.label.upper()}", reference),
        headers,
        rows,
        (6, 34, *[max(16, min(30, 120 // max(len(inds), 1))) for _ in inds]),
    )
    for cell in ws2[ws2.max_row]:
        cell.font = Font(name=_FONT, size=11, bold=True)
    title = f"Phụ lục - {doc.title}"
    _properties(wb, title, body, report_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _moment(value) -> str | None:
    """When a file came, in Vietnam's time: `16:40 ngày 14/03/2022`."""
    if value is None or value != value:  # None or NaT
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if value.tzinfo is None:  # the store keeps UTC
        value = value.replace(tzinfo=dt.UTC)
    return vnformat.moment(value)


_STATES = {"valid": "hợp lệ", "rejected": "bị trả lại", "missing": "chưa nộp"}


@_cycle_collection_paused()
def write_status(
    result: Consolidated, path: Path, body: Body, report_date: dt.date | None = None
) -> Path:
    """The office's own follow-up, never sent: each unit's state, versions, when its latest
    valid version came and whether on time."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Tình hình nộp"
    rows = []
    for n, r in enumerate(result.status.itertuples(), start=1):
        received = _moment(getattr(r, "received_at", None))
        rows.append(
            [
                n,
                r.name,
                r.unit,
                _STATES.get(str(r.state), str(r.state)),
                _cell(r.version),
                received,
                {True: "đúng hạn", False: "trễ hạn"}.get(r.on_time, ""),
            ]
        )
    _sheet(
        ws,
        (
            "Tình hình nộp số liệu (lưu nội bộ, không gửi kèm báo cáo)",
            f"{result.period.label}: đã nhận {result.completeness} đơn vị, "
            f"đúng hạn {result.timeliness}",
            body.short_name,
        ),
        ["TT", "Đơn vị", "Mã đơn vị", "Trạng thái", "Phiên bản", "Nhận lúc", "Đúng hạn"],
        rows,
        (6, 30, 14, 14, 10, 22, 12),
    )
    _properties(wb, f"Tình hình nộp số liệu {result.period.label}", body, report_date)
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
    env: Environment,
    doc: Document,
    result: Consolidated,
    report: ReportDef,
    folder: Path,
    body: Body,
    report_date: dt.date | None = None,
    linked: Document | None = None,
    sources_page: str = "",
) -> list[Path]:
    """All output files of one version into `folder`, named by `output_names`; the last is the
    office's status workbook, which is never sent. With `linked` (the document built with
    `link_figures`) the HTML, the office's copy, links each figure to `sources_page`."""
    folder.mkdir(parents=True, exist_ok=True)
    names = output_names(report, result.period, body)
    md, html, docx, xlsx, status = (folder / name for name in names.all)
    context = {"doc": doc, "completeness": result.completeness, "timeliness": result.timeliness}
    md.write_text(env.get_template("report.md.j2").render(**context), encoding="utf-8")
    office = {**context, "doc": linked or doc, "sources_page": sources_page if linked else ""}
    html.write_text(env.get_template("report.html.j2").render(**office), encoding="utf-8")
    write_docx(doc, docx, author=body.short_name, date=report_date)
    write_appendices(result, report, xlsx, doc, body, report_date)
    write_status(result, status, body, report_date)
    return [md, html, docx, xlsx, status]
