"""The collection form: a pre-filled .xlsx per unit and period, and reading it back.

Forms are written with XlsxWriter (several times faster than openpyxl for thousands of
forms). The visible sheet lists the indicators the unit owns, one row each, with the value to fill
in column E. A very hidden sheet `_baocao` carries the report, period, unit and request
token, so a returned file identifies itself whatever it was renamed to. Returned files are
read with python-calamine (fast, and it reads every Excel generation); a CSV in long form
(`don_vi,ky_bao_cao,ma_chi_tieu,gia_tri`, optionally `ma_bieu_mau`) is accepted too, for one
unit or many, in UTF-8, UTF-16 or the legacy Windows-1258.

Reading is bounded by `ReadLimits`: before calamine sees an .xlsx (or .ods), a streaming
pre-check verifies the zip (entries, real uncompressed size, ratio) and scans the sheets to be
read for the cells actually used, so a file whose one cell sits at XFD1048576 is refused with a
reason instead of making calamine allocate hundreds of GB. What the pre-checks cannot see (the
binary .xls and .xlsb, a reader that hangs) is caught by reading in a worker process:
`baocao.reader.read_isolated`.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from xml.parsers import expat

if TYPE_CHECKING:  # the writing side's imports stay out of the reader processes' start-up
    from baocao.config import Body, Indicator, ReportDef, Unit
    from baocao.periods import Period

FORM_SHEET = "BaoCao"
META_SHEET = "_baocao"
HEADER = ("STT", "Mã chỉ tiêu", "Chỉ tiêu", "Đơn vị tính", "Giá trị", "Ghi chú")
FIRST_ROW = 8
VALUE_COL = "E"


class FormError(Exception):
    """A file that cannot be read as a form; the message says why and what to do."""


@dataclass
class ParsedFile:
    """What a returned file says: who, which period, and raw values with their cells."""

    meta: dict[str, str] = field(default_factory=dict)
    # indicator, raw, cell; unit and period (CSV), token (CSV column ma_bieu_mau);
    # problem="formula_no_value" where the value cell is a formula Excel never calculated
    rows: list[dict] = field(default_factory=list)
    encoding: str = ""  # a CSV's detected text encoding (utf-8, utf-16-le, cp1258, ...)


@dataclass(frozen=True)
class ReadLimits:
    """How much one received file may cost to read. A real form is ~40 rows x 6 columns and a
    few kB; a province's bulk CSV may be 10,000 units x 40 rows. Built from the settings
    (`BAOCAO_READ_...`) by `from_settings`; the defaults here are the same."""

    max_uncompressed_bytes: int = 100_000_000  # all entries of an .xlsx zip, really inflated
    max_zip_entries: int = 1_000
    max_compression_ratio: int = 200  # per entry over 1 MB; more is a zip bomb
    max_sheets: int = 100
    max_rows: int = 1_000_000  # sheet rows (absolute) and CSV records
    max_columns: int = 200  # sheet columns (absolute; XFD is 16,384) and CSV fields
    max_cells: int = 2_000_000  # cells in a sheet, and the area calamine would allocate
    seconds_per_file: float = 30.0  # wall clock per file in a reader process
    memory_mb: int = 1_024  # address space of one reader process

    @classmethod
    def from_settings(cls, settings) -> ReadLimits:
        return cls(
            max_uncompressed_bytes=settings.read_max_uncompressed_bytes,
            max_zip_entries=settings.read_max_zip_entries,
            max_compression_ratio=settings.read_max_compression_ratio,
            max_sheets=settings.read_max_sheets,
            max_rows=settings.read_max_rows,
            max_columns=settings.read_max_columns,
            max_cells=settings.read_max_cells,
            seconds_per_file=settings.read_seconds_per_file,
            memory_mb=settings.read_memory_mb,
        )


# ---- writing ----------------------------------------------------------------------------


def build_form(
    *,
    body: Body,
    report: ReportDef,
    unit: Unit,
    period: Period,
    indicators: list[Indicator],
    token: str,
    deadline: dt.datetime,
    prefill: dict[str, object] | None = None,
    created: dt.datetime | None = None,
) -> bytes:
    """The unit's form as .xlsx bytes (XlsxWriter); `prefill` puts values in (the example's
    filled forms use it; a percentage is given as the report prints it, 90 for 90 %);
    `created` is the workbook's creation time (its document properties; now when None).
    Many units at once: `FormStamper`, which writes one workbook per layout.

    Under the table, in words, what the office checks (`form_notes`). Each value cell refuses
    at entry what its indicator cannot hold: a whole number for a count, a number within the
    indicator's bounds, a date. A percentage cell has Excel's percent format, so what Excel
    stores is always the fraction (typing 90 or 90 % stores 0.9) and is read back as 90."""
    return _write_form(
        _FormText(body, report, period, deadline, created),
        indicators,
        unit_name=unit.name,
        unit_code=unit.code,
        token=token,
        prefill=prefill or {},
    )


@dataclass(frozen=True)
class _FormText:
    """What a form says that is the same for every unit of a period."""

    body: Body
    report: ReportDef
    period: Period
    deadline: dt.datetime
    created: dt.datetime | None


def _write_form(
    text: _FormText,
    indicators: list[Indicator],
    *,
    unit_name: str,
    unit_code: str,
    token: str,
    prefill: dict[str, object],
) -> bytes:
    """The form's workbook, written by XlsxWriter (`build_form` says what it holds)."""
    import xlsxwriter

    from baocao import vnformat

    body, report, period, deadline = text.body, text.report, text.period, text.deadline
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    if text.created is not None:
        wb.set_properties({"created": text.created.astimezone(dt.UTC).replace(tzinfo=None)})
    bold = wb.add_format({"bold": True})
    top = wb.add_format({"text_wrap": True, "valign": "top"})
    fill = {"locked": False, "bg_color": "#FFF2CC", "valign": "top", "border": 1}
    value_formats = {
        "date": wb.add_format({**fill, "num_format": "DD/MM/YYYY"}),
        "text": wb.add_format({**fill, "text_wrap": True}),
        "decimal": wb.add_format({**fill, "num_format": "#,##0.000"}),
        "number": wb.add_format({**fill, "num_format": "#,##0"}),
        "percent": wb.add_format({**fill, "num_format": PERCENT_FORMAT}),
    }
    ws = wb.add_worksheet(FORM_SHEET)
    start, end = period.window()
    last_day = (deadline - dt.timedelta(seconds=1)).date()
    ws.write("A1", " ".join(body.name_lines), bold)
    ws.write(
        "A2",
        f"BIỂU MẪU SỐ LIỆU: {report.name.upper()}",
        wb.add_format({"bold": True, "font_size": 13}),
    )
    ws.write(
        "A3",
        f"Kỳ báo cáo: {period.label} (số liệu từ {vnformat.date(start)} đến {vnformat.date(end)})",
    )
    ws.write("A4", f"Đơn vị báo cáo: {unit_name} (mã {unit_code})")
    ws.write("A5", f"Hạn gửi: trước 24 giờ ngày {vnformat.date(last_day)}")
    ws.write(
        "A6",
        "Chỉ điền cột E (Giá trị). Không đổi tên sheet, không sửa cột Mã chỉ tiêu. "
        "Những điều Văn phòng kiểm tra được ghi dưới bảng.",
        wb.add_format({"italic": True}),
    )
    header = wb.add_format(
        {
            "bold": True,
            "bg_color": "#DDEBF7",
            "align": "center",
            "valign": "vcenter",
            "text_wrap": True,
            "border": 1,
        }
    )
    ws.write_row(FIRST_ROW - 2, 0, HEADER, header)
    for n, ind in enumerate(indicators, start=1):
        r = FIRST_ROW - 2 + n  # zero-based row of indicator n
        unit_label = ind.unit or ("%" if ind.type == "percent" else "")
        note = ind.help or ("Bắt buộc" if ind.required else "Không bắt buộc")
        ws.write_row(r, 0, (n, ind.code, ind.label, unit_label), top)
        ws.write(r, 5, note, top)
        kind = (
            ind.type
            if ind.type in ("date", "text", "percent")
            else ("decimal" if ind.decimals else "number")
        )
        value = prefill.get(ind.code)
        if value is None:
            ws.write_blank(r, 4, None, value_formats[kind])
        elif kind == "date":
            ws.write_datetime(r, 4, dt.datetime.combine(value, dt.time()), value_formats[kind])
        elif kind == "percent" and isinstance(value, int | float):
            ws.write_number(r, 4, value / 100, value_formats[kind])
        else:
            ws.write(r, 4, value, value_formats[kind])
        rule = entry_rule(ind)
        if rule is not None:
            ws.data_validation(r, 4, r, 4, rule)
    widths = (5, 22, 60, 12, 18, 16)
    for col, width in enumerate(widths):
        ws.set_column(col, col, width)
    last = _write_notes(
        wb, ws, form_notes(report, indicators), FIRST_ROW - 2 + len(indicators), sum(widths)
    )
    ws.set_paper(9)  # A4, landscape, one page wide: clerks print it
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.print_area(0, 0, last, len(widths) - 1)
    ws.repeat_rows(FIRST_ROW - 2)  # the table's header on every printed page
    ws.protect()  # labels and codes locked, column E open; no password
    meta = wb.add_worksheet(META_SHEET)
    for row, pair in enumerate(
        (
            ("form_version", "1"),
            ("report_id", report.id),
            ("period", period.code),
            ("unit_code", unit_code),
            ("token", token),
        )
    ):
        meta.write_row(row, 0, pair)
    meta.very_hidden()
    wb.close()
    return buf.getvalue()


# ---- many units: one workbook per layout, each unit stamped into it ---------------------
#
# XlsxWriter takes ~10 ms a form; a province opens 10,000 of them that differ only in the
# unit's name, code and token. Units filling the same indicators share a layout: its workbook
# is written once with placeholders where those three go, and each unit's form is that
# workbook's zip with the placeholders replaced (escaped as XlsxWriter escapes a cell's text).

_SLOTS = ("unit_name", "unit_code", "token")
# what stands in a slot: text no configuration or unit writes, that XlsxWriter keeps verbatim
_PLACEHOLDER = {slot: f"[[baocao-stamp:{slot}]]" for slot in _SLOTS}
_STAMPED_PART = "xl/sharedStrings.xml"  # the cells' text, where the placeholders land
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\Z")


@dataclass(frozen=True)
class _Part:
    """A zip entry of a template: its header as XlsxWriter wrote it, its text split around
    placeholders (odd items are slot names) and, when it has none, its deflated bytes."""

    info: zipfile.ZipInfo
    pieces: tuple[bytes | str, ...]
    deflated: bytes = b""


@dataclass(frozen=True)
class FormTemplate:
    """One layout's form with the unit's slots open, as its zip entries in order."""

    parts: tuple[_Part, ...]


def form_template(
    *,
    body: Body,
    report: ReportDef,
    period: Period,
    indicators: list[Indicator],
    deadline: dt.datetime,
    created: dt.datetime,
) -> FormTemplate:
    """The form of every unit filling `indicators`, with placeholders for its name, code and
    token; `stamp_form` makes each unit's form from it."""
    content = _write_form(
        _FormText(body, report, period, deadline, created),
        indicators,
        unit_name=_PLACEHOLDER["unit_name"],
        unit_code=_PLACEHOLDER["unit_code"],
        token=_PLACEHOLDER["token"],
        prefill={},
    )
    split = re.compile("(" + "|".join(re.escape(p) for p in _PLACEHOLDER.values()) + ")")
    slot_of = {p: slot for slot, p in _PLACEHOLDER.items()}
    parts = []
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_DEFLATED or info.extra or info.comment:
                raise RuntimeError(f"unexpected zip entry {info.filename} in a form")
            data = zf.read(info)
            pieces = split.split(data.decode("utf-8"))
            if len(pieces) == 1:
                parts.append(_Part(info, (data,), _deflate(data)))
            elif info.filename == _STAMPED_PART:
                parts.append(
                    _Part(
                        info,
                        tuple(slot_of[p] if n % 2 else p.encode() for n, p in enumerate(pieces)),
                    )
                )
            else:
                raise RuntimeError(f"form placeholder written to {info.filename}")
    found = {piece for part in parts for piece in part.pieces[1::2]}
    if found != set(_SLOTS):
        raise RuntimeError(f"form placeholders missing: {set(_SLOTS) - found}")
    return FormTemplate(tuple(parts))


def stamp_form(template: FormTemplate, *, unit: Unit, token: str) -> bytes:
    """The unit's form from its layout's template: the bytes `build_form` writes for it with
    the same `created`. Deterministic: the same unit and token give the same bytes."""
    if not _TOKEN.match(token):  # XlsxWriter writes such text as it is, in one cell
        raise ValueError(f"a stamped form needs its request token (letters, digits): {token!r}")
    values = {
        "unit_name": _cell_text(unit.name),
        "unit_code": _cell_text(unit.code),
        "token": _cell_text(token),
    }
    entries = []
    for part in template.parts:
        if part.deflated:
            info = part.info
            entries.append((info, info.CRC, info.file_size, part.deflated))
        else:
            data = b"".join(values[p] if n % 2 else p for n, p in enumerate(part.pieces))
            entries.append((part.info, zlib.crc32(data), len(data), _deflate(data)))
    return _zip(entries)


def _deflate(data: bytes) -> bytes:
    """Raw deflate as zipfile (and so XlsxWriter) writes an entry."""
    packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")
_END_RECORD = struct.Struct("<4s4H2LH")


def _zip(entries: list[tuple[zipfile.ZipInfo, int, int, bytes]]) -> bytes:
    """A zip of deflated entries (header, CRC, size, deflated bytes), laid out as zipfile lays
    them out: local headers and data in order, then the central directory."""
    out, central, offset = [], [], 0
    for info, crc, size, data in entries:
        name = info.filename.encode("ascii")
        y, mo, d, h, mi, sec = info.date_time
        when = (h << 11 | mi << 5 | sec // 2, (y - 1980) << 9 | mo << 5 | d)
        common = (info.flag_bits, zipfile.ZIP_DEFLATED, *when, crc, len(data), size, len(name))
        local = _LOCAL_HEADER.pack(b"PK\x03\x04", info.extract_version, 0, *common, 0)
        central.append(
            _CENTRAL_HEADER.pack(
                b"PK\x01\x02",
                info.create_version,
                info.create_system,
                info.extract_version,
                0,
                *common,
                0,
                0,
                0,
                info.internal_attr,
                info.external_attr,
                offset,
            )
            + name
        )
        out += (local, name, data)
        offset += len(local) + len(name) + len(data)
    directory = b"".join(central)
    end = _END_RECORD.pack(
        b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), offset, 0
    )
    return b"".join(out) + directory + end


_CELL_ESCAPE = re.compile(r"_x[0-9a-fA-F]{4}_|[\x00-\x08\x0b-\x1f\ufffe\uffff&<>]")


def _cell_text(value: str) -> bytes:
    """A cell's text as XlsxWriter writes it in sharedStrings.xml: Excel's _xHHHH_ for control
    characters (and for literal _xHHHH_ text), then XML's &amp; &lt; &gt;."""

    def escape(match: re.Match) -> str:
        text = match.group()
        if len(text) > 1:
            return "_x005F" + text
        return {"&": "&amp;", "<": "&lt;", ">": "&gt;"}.get(text) or f"_x{ord(text):04X}_"

    return _CELL_ESCAPE.sub(escape, value).encode("utf-8")


class FormStamper:
    """The forms of a period's units: one template per layout (the indicators a unit fills),
    built on first use, each unit stamped into its layout's template."""

    def __init__(
        self,
        *,
        body: Body,
        report: ReportDef,
        period: Period,
        deadline: dt.datetime,
        created: dt.datetime,
    ):
        self._text = {
            "body": body,
            "report": report,
            "period": period,
            "deadline": deadline,
            "created": created,
        }
        self._templates: dict[tuple[str, ...], FormTemplate] = {}

    def form(self, unit: Unit, indicators: list[Indicator], token: str) -> bytes:
        """The unit's form as .xlsx bytes."""
        layout = tuple(ind.code for ind in indicators)
        if layout not in self._templates:
            self._templates[layout] = form_template(indicators=indicators, **self._text)
        return stamp_form(self._templates[layout], unit=unit, token=token)

    @property
    def layouts(self) -> int:
        """How many templates were written."""
        return len(self._templates)


PERCENT_FORMAT = "0.0%"
# Excel's largest whole number in a "whole number" validation; an indicator without bounds
# gets these, and the validation of what was received still applies its own caps
_NO_BOUND = 2_147_483_647


def _num(value: float) -> str:
    """A bound as Vietnamese write it: 1.000, 0,5."""
    from baocao import vnformat

    text = vnformat.number(value, 3)
    return text.rstrip("0").rstrip(",") if "," in text else text


def entry_rule(ind: Indicator) -> dict | None:
    """The data validation (XlsxWriter options) of an indicator's value cell: what Excel
    refuses at entry. None for a text."""
    if ind.type == "text":
        return None
    if ind.type == "date":
        return {
            "validate": "date",
            "criteria": ">",
            "value": dt.date(2000, 1, 1),
            "error_title": "Ngày không hợp lệ",
            "error_message": "Nhập một ngày dạng dd/mm/yyyy, ví dụ 21/02/2022. / Enter a date.",
        }
    low, high = ind.min, ind.max
    if ind.type == "percent":
        low = 0.0 if low is None else low
        high = 100.0 if high is None else high
        return {
            "validate": "decimal",
            "criteria": "between",
            "minimum": low / 100,
            "maximum": high / 100,
            "error_title": "Tỷ lệ không hợp lệ",
            "error_message": (
                f"Nhập tỷ lệ từ {_num(low)}% đến {_num(high)}%: gõ 90 (hoặc 90%) cho 90%. / "
                f"Enter a percentage from {low:g}% to {high:g}%."
            ),
        }
    whole = ind.type == "integer"
    if low is not None and high is not None:
        limits = {"criteria": "between", "minimum": low, "maximum": high}
        vi, en = f" từ {_num(low)} đến {_num(high)}", f" from {low:g} to {high:g}"
    elif low is not None:
        limits = {"criteria": ">=", "value": low}
        vi, en = f" từ {_num(low)} trở lên", f" of at least {low:g}"
    elif high is not None:
        limits = {"criteria": "<=", "value": high}
        vi, en = f" không quá {_num(high)}", f" of at most {high:g}"
    else:
        limits = {"criteria": "between", "minimum": -_NO_BOUND, "maximum": _NO_BOUND}
        vi = en = ""
    if whole:
        return {
            "validate": "integer",
            **limits,
            "error_title": "Chỉ nhập số nguyên",
            "error_message": (
                f"Nhập một số nguyên{vi}, không có phần thập phân. / Enter a whole number{en}."
            ),
        }
    return {
        "validate": "decimal",
        **limits,
        "error_title": "Số không hợp lệ",
        "error_message": f"Nhập một số{vi}. / Enter a number{en}.",
    }


@dataclass(frozen=True)
class FormNotes:
    """What the form says under its table, as lines of text."""

    rules: list[str]  # sum and not-above rules involving the unit's indicators
    blanks: list[str]  # what the report prints for each optional text left blank
    general: list[str]  # the checks every value goes through


def form_notes(report: ReportDef, indicators: list[Indicator]) -> FormNotes:
    """In words, what the office checks on this unit's form: each sum and not-above rule that
    involves one of its indicators, by row number and label ("Dòng 12 (Tổng chi ngân sách
    Nhà nước) = Dòng 13 (Chi ngân sách huyện) + Dòng 14 (Chi ngân sách xã)"); a rule whose
    other figures come from other units is said as what the office compares when it
    consolidates. Then what each optional text prints in the report when left blank."""
    rows = {ind.code: FIRST_ROW + n for n, ind in enumerate(indicators)}
    inds = report.indicator_map

    def ref(code: str) -> str:
        if code in rows:
            return f"Dòng {rows[code]} ({inds[code].label})"
        return f"{inds[code].label} (do đơn vị khác báo cáo)"

    def said(codes: tuple[str, ...], text: str, severity: str) -> str:
        if not all(c in rows for c in codes):
            return f"Khi tổng hợp, Văn phòng đối chiếu: {text}."
        if severity == "warning":
            return f"{text} (nếu không khớp, Văn phòng nhắc kiểm tra lại, không trả biểu mẫu)."
        return f"{text}."

    rules: list[str] = []
    for rule in report.sum_rules:
        codes = (rule.total, *rule.parts)
        if any(c in rows for c in codes):
            text = f"{ref(rule.total)} = {' + '.join(ref(p) for p in rule.parts)}"
            rules.append(said(codes, text, rule.severity))
    for rule in report.not_above_rules:
        codes = (rule.part, rule.whole)
        if any(c in rows for c in codes):
            text = f"{ref(rule.part)} không lớn hơn {ref(rule.whole)}"
            rules.append(said(codes, text, rule.severity))
    blanks = [
        f"Dòng {rows[ind.code]} ({ind.label}): "
        + (f"báo cáo in “{ind.default}”" if ind.default else "(không in gì)")
        for ind in indicators
        if ind.type == "text" and not ind.required
    ]
    numbers = [i for i in indicators if i.type in ("integer", "decimal", "percent")]
    general = ["Dòng ghi “Bắt buộc” ở cột Ghi chú phải có giá trị."]
    if numbers:
        general.append(
            "Ô số liệu chỉ nhận đúng loại số của dòng: số đếm (người, hồ sơ, văn bản...) là số "
            "nguyên, không có phần thập phân"
            + (
                "; không nhận số âm."
                if all(i.min is not None and i.min >= 0 for i in numbers)
                else "."
            )
        )
    if any(ind.type == "percent" for ind in indicators):
        general.append("Ô tỷ lệ (%): gõ 90 hoặc 90% cho 90%, không gõ 0,9.")
    if numbers:
        general.append(
            "Mỗi số được so với số đơn vị đã báo cáo kỳ trước: số tăng gấp 10 lần trở lên, hoặc "
            "giảm còn 1/100 trở xuống, sẽ được nhắc kiểm tra lại (biểu mẫu vẫn được nhận)."
        )
    return FormNotes(rules=rules, blanks=blanks, general=general)


def _write_notes(wb, ws, notes: FormNotes, table_end: int, width: int) -> int:
    """The notes under the table (whose last row is zero-based `table_end`), after one blank
    row, each a wrapped paragraph merged across the table's width (`width` characters);
    returns the last row written."""
    heading = wb.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    line = wb.add_format({"text_wrap": True, "valign": "top"})
    per_line = max(int(width * 0.9), 40)  # characters of 11 pt text per printed line
    row = table_end + 1

    def para(text: str, fmt) -> None:
        nonlocal row
        row += 1
        ws.merge_range(row, 0, row, 5, text, fmt)
        lines = sum(max(1, -(-len(part) // per_line)) for part in text.split("\n"))
        ws.set_row(row, 15 * lines + 2)

    para("NHỮNG ĐIỀU VĂN PHÒNG KIỂM TRA KHI NHẬN BIỂU MẪU", heading)
    for text in notes.general:
        para(f"- {text}", line)
    if notes.rules:
        para(
            "Số liệu giữa các dòng phải khớp (không khớp thì biểu mẫu bị trả lại để sửa):", heading
        )
        for text in notes.rules:
            para(f"- {text}", line)
    if notes.blanks:
        para("Nếu để trống dòng không bắt buộc, báo cáo sẽ in như sau:", heading)
        for text in notes.blanks:
            para(f"- {text}", line)
    return row


# ---- reading ----------------------------------------------------------------------------


def read_file(path: Path, limits: ReadLimits | None = None) -> ParsedFile:
    """Parse a returned .xlsx/.xlsm/.xls/.xlsb/.ods or .csv within `limits`, in this process;
    raise FormError with a user-facing reason. Untrusted files in bulk should go through
    `baocao.reader.read_isolated`, which runs this in a worker process."""
    limits = limits or ReadLimits()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"):
        raise FormError(
            f"{path.name}: định dạng '{suffix}' không được hỗ trợ / unsupported file type; "
            "gửi tệp .xlsx (biểu mẫu đã gửi kèm) hoặc .csv"
        )
    try:
        if suffix == ".csv":
            return _read_csv(path, limits)
        plan = None
        if suffix in (".xlsx", ".xlsm"):
            plan = inspect_xlsx(path, limits)
        elif suffix == ".ods":
            inspect_ods(path, limits)
        elif suffix == ".xlsb":
            with _open_zip(path) as zf:
                _check_zip(zf, path, limits)
        return _read_workbook(path, limits, plan)
    except OSError as exc:
        raise FormError(
            f"{path.name}: không mở được tệp ({exc.strerror or exc}) / cannot open the file; "
            "gửi lại tệp"
        ) from None


def _n(value: int) -> str:
    """1.000.000: thousands as Vietnamese write them."""
    return f"{value:,}".replace(",", ".")


def _corrupt(name: str, detail: str = "") -> FormError:
    detail = f" ({detail})" if detail else ""
    return FormError(
        f"{name}: tệp bị hỏng, không phải tệp Excel hợp lệ{detail} / corrupt or not an .xlsx "
        "file; mở lại biểu mẫu bằng Excel, lưu dạng .xlsx rồi gửi lại"
    )


# .xlsx pre-checks: cheap, streaming, bounded; nothing here allocates by what a file claims


@dataclass
class XlsxPlan:
    """What the pre-check learnt: the sheet to read and the cells (row, col; zero-based) of
    that sheet holding a formula with no calculated value, or a number shown in a percent
    format (Excel stores 90 % as 0.9; calamine gives the 0.9 without its format)."""

    form_sheet: str
    formula_no_value: set[tuple[int, int]] = field(default_factory=set)
    percent_cells: set[tuple[int, int]] = field(default_factory=set)


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _open_zip(path: Path) -> zipfile.ZipFile:
    with path.open("rb") as fh:
        head = fh.read(8)
    if head == _OLE_MAGIC:
        raise FormError(
            f"{path.name}: tệp có mật khẩu, hoặc là tệp Excel cũ (.xls) bị đổi tên / "
            "password-protected or an old .xls renamed; bỏ mật khẩu (File > Info > Protect "
            "Workbook) và lưu dạng .xlsx rồi gửi lại"
        )
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise _corrupt(path.name) from None


def inspect_xlsx(path: Path, limits: ReadLimits) -> XlsxPlan:
    """Refuse, with a reason, an .xlsx that would cost more than `limits` to read: zip
    structure, real inflated size, number of sheets, and the extent of the cells actually used
    in the sheets that will be read. Returns the plan for reading it."""
    with _open_zip(path) as zf:
        _check_zip(zf, path, limits)
        names = {i.filename.lower(): i.filename for i in zf.infolist()}
        sheets = _workbook_sheets(zf, names, path.name, limits)
        if not sheets:
            raise _corrupt(path.name, "không có sheet nào / no sheets")
        by_name = dict(sheets)
        form = FORM_SHEET if FORM_SHEET in by_name else sheets[0][0]
        plan = XlsxPlan(form_sheet=form)
        percent_styles = _percent_styles(zf, names, path.name)
        for sheet in dict.fromkeys((form, META_SHEET)):
            if sheet not in by_name:
                continue
            part = names.get(by_name[sheet].lower())
            if part is None:
                raise _corrupt(path.name, f"thiếu dữ liệu của sheet {sheet}")
            scan = _SheetScan(
                path.name,
                sheet,
                limits,
                record_formulas=sheet == form,
                percent_styles=percent_styles if sheet == form else frozenset(),
            )
            with zf.open(part) as fh:
                scan.run(fh)
            if sheet == form:
                plan.formula_no_value = scan.formula_no_value
                plan.percent_cells = scan.percent_cells
        return plan


def _check_zip(zf: zipfile.ZipFile, path: Path, limits: ReadLimits) -> None:
    """Entry count, declared sizes and ratios, then every entry inflated for real (bounded by
    its declared size, CRC checked), so a size the archive lies about is caught here."""
    infos = zf.infolist()
    if len(infos) > limits.max_zip_entries:
        raise FormError(
            f"{path.name}: tệp nén có {_n(len(infos))} mục, quá giới hạn {_n(limits.max_zip_entries)}"
            " / too many zip entries; lưu lại biểu mẫu bằng Excel dạng .xlsx rồi gửi lại"
        )
    total = sum(i.file_size for i in infos)
    if total > limits.max_uncompressed_bytes:
        raise FormError(
            f"{path.name}: tệp giải nén quá lớn ({_n(total)} byte, giới hạn "
            f"{_n(limits.max_uncompressed_bytes)}) / refused as oversized; biểu mẫu thật chỉ vài "
            "kB: chép số liệu vào biểu mẫu gốc rồi gửi lại"
        )
    for info in infos:
        if info.file_size > 1_000_000 and info.file_size > limits.max_compression_ratio * max(
            info.compress_size, 1
        ):
            raise FormError(
                f"{path.name}: tệp nén bất thường ({info.filename}: {_n(info.compress_size)} byte "
                f"giải nén thành {_n(info.file_size)}) / looks like a zip bomb; lưu lại biểu mẫu "
                "bằng Excel rồi gửi lại"
            )
    with path.open("rb") as fh:
        for info in infos:
            if not info.is_dir():
                _inflate_checked(fh, info, path.name)


def _inflate_checked(fh, info: zipfile.ZipInfo, name: str) -> None:
    if info.flag_bits & 0x1:
        raise FormError(
            f"{name}: tệp có mật khẩu / encrypted; bỏ mật khẩu, lưu lại dạng .xlsx rồi gửi lại"
        )
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _corrupt(name, f"kiểu nén {info.compress_type} không hỗ trợ")
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise _corrupt(name)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    fh.seek(info.header_offset + 30 + name_len + extra_len)
    inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    left, out, crc = info.compress_size, 0, 0
    try:
        while left:
            chunk = fh.read(min(1 << 16, left))
            if not chunk:
                raise _corrupt(name, "tệp bị cắt cụt / truncated")
            left -= len(chunk)
            while chunk:
                data = inflater.decompress(chunk, info.file_size + 1 - out) if inflater else chunk
                chunk = inflater.unconsumed_tail if inflater else b""
                out += len(data)
                crc = zlib.crc32(data, crc)
                if out > info.file_size:
                    raise FormError(
                        f"{name}: tệp nén bất thường ({info.filename} giải nén ra nhiều hơn "
                        f"{_n(info.file_size)} byte khai báo) / zip lies about its size; lưu lại "
                        "biểu mẫu bằng Excel rồi gửi lại"
                    )
        if inflater:
            data = inflater.flush()
            out += len(data)
            crc = zlib.crc32(data, crc)
            if not inflater.eof:
                raise _corrupt(name, "tệp bị cắt cụt / truncated")
    except zlib.error:
        raise _corrupt(name) from None
    if out != info.file_size or crc != info.CRC:
        raise _corrupt(name)


def _xml_events(fh, on_start, on_end=None, on_text=None, chunk: int = 1 << 16) -> None:
    """Stream an XML part through expat (no DTDs, no entities: OOXML has none)."""
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def no_dtd(*_):
        raise ValueError("DTD")

    parser.StartDoctypeDeclHandler = no_dtd
    parser.EntityDeclHandler = no_dtd
    parser.StartElementHandler = on_start
    if on_end:
        parser.EndElementHandler = on_end
    if on_text:
        parser.CharacterDataHandler = on_text
    while data := fh.read(chunk):
        parser.Parse(data, False)
    parser.Parse(b"", True)


class _Budget(Exception):
    """Stop parsing: enough has been seen."""


def _workbook_sheets(
    zf: zipfile.ZipFile, names: dict[str, str], file: str, limits: ReadLimits
) -> list[tuple[str, str]]:
    """(sheet name, zip part) in workbook order, from xl/workbook.xml and its relationships."""
    root = _main_part(zf, names, file)
    base = root.rpartition("/")[0]
    sheets: list[tuple[str, str]] = []

    def on_sheet(tag, attrs):
        if tag.rpartition(":")[2] == "sheet":
            rid = next((v for k, v in attrs.items() if k.rpartition(":")[2] == "id"), "")
            sheets.append((attrs.get("name", ""), rid))
            if len(sheets) > limits.max_sheets:
                raise _Budget

    try:
        with zf.open(names[root.lower()]) as fh:
            _xml_events(fh, on_sheet)
    except _Budget:
        raise FormError(
            f"{file}: tệp có hơn {limits.max_sheets} sheet / too many sheets; dùng biểu mẫu đã "
            "gửi kèm (một sheet BaoCao)"
        ) from None
    except (expat.ExpatError, ValueError):
        raise _corrupt(file) from None
    rels = _relationships(zf, names, f"{base}/_rels/{root.rpartition('/')[2]}.rels", file)
    parts = []
    for sheet, rid in sheets:
        target = rels.get(rid, "")
        part = target.lstrip("/") if target.startswith("/") else f"{base}/{target}".lstrip("/")
        parts.append((sheet, _normpath(part)))
    return parts


def _main_part(zf: zipfile.ZipFile, names: dict[str, str], file: str) -> str:
    rels = _relationships(zf, names, "_rels/.rels", file, by_type="officeDocument")
    target = rels.get("officeDocument", "xl/workbook.xml").lstrip("/")
    if target.lower() not in names:
        raise _corrupt(file, "thiếu workbook.xml")
    return _normpath(target)


def _relationships(
    zf: zipfile.ZipFile, names: dict[str, str], part: str, file: str, by_type: str = ""
) -> dict[str, str]:
    """Id -> Target of a .rels part (or type suffix -> Target with `by_type`)."""
    found: dict[str, str] = {}

    def on_rel(tag, attrs):
        if tag.rpartition(":")[2] == "Relationship":
            if len(found) > 10_000:
                raise _Budget
            key = attrs.get("Type", "").rpartition("/")[2] if by_type else attrs.get("Id", "")
            found.setdefault(key, attrs.get("Target", ""))

    real = names.get(part.lower())
    if real is None:
        return found
    try:
        with zf.open(real) as fh:
            _xml_events(fh, on_rel)
    except (_Budget, expat.ExpatError, ValueError):
        raise _corrupt(file) from None
    return found


_LITERAL = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')  # quoted text, escapes, [Red]/[>=100]
_MAX_STYLES = 200_000  # Excel allows 64,000 cell formats


def _percent_styles(zf: zipfile.ZipFile, names: dict[str, str], file: str) -> frozenset[int]:
    """Indexes of the cell formats (`cellXfs`, what a cell's `s` names) whose number format
    is a percentage: built-in 9 (0%) and 10 (0.00%), or a custom format with a `%` outside
    quoted text. Read from the workbook's styles part; none when it has none."""
    root = _main_part(zf, names, file)
    base, _, leaf = root.rpartition("/")
    rels = _relationships(zf, names, f"{base}/_rels/{leaf}.rels", file, by_type="styles")
    target = rels.get("styles", "")
    part = target.lstrip("/") if target.startswith("/") else f"{base}/{target}".lstrip("/")
    real = names.get(_normpath(part).lower()) if target else None
    if real is None:
        return frozenset()
    percent_ids = {9, 10}
    xf_formats: list[int] = []
    where = {"numFmts": False, "cellXfs": False}

    def start(tag: str, attrs: dict) -> None:
        tag = tag.rpartition(":")[2]
        if tag in where:
            where[tag] = True
        elif tag == "numFmt" and where["numFmts"]:
            code = _LITERAL.sub("", attrs.get("formatCode", ""))
            num_id = attrs.get("numFmtId", "")
            if "%" in code and num_id.isdigit() and len(num_id) < 10:
                percent_ids.add(int(num_id))
        elif tag == "xf" and where["cellXfs"]:
            num_id = attrs.get("numFmtId", "0")
            xf_formats.append(int(num_id) if num_id.isdigit() and len(num_id) < 10 else 0)
            if len(xf_formats) > _MAX_STYLES:
                raise _Budget

    def end(tag: str) -> None:
        tag = tag.rpartition(":")[2]
        if tag == "cellXfs":
            raise _Budget  # all that is needed has been seen
        if tag in where:
            where[tag] = False

    try:
        with zf.open(real) as fh:
            _xml_events(fh, start, end)
    except _Budget:
        pass
    except (expat.ExpatError, ValueError):
        raise _corrupt(file, "styles.xml") from None
    return frozenset(i for i, num_id in enumerate(xf_formats) if num_id in percent_ids)


def _normpath(part: str) -> str:
    out: list[str] = []
    for seg in part.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg and seg != ".":
            out.append(seg)
    return "/".join(out)


_REF = re.compile(r"([A-Za-z]{1,10})(\d{1,10})")


def _parse_ref(ref: str) -> tuple[int, int] | None:
    m = _REF.fullmatch(ref)
    if not m:
        return None
    col = 0
    for ch in m[1].upper():
        col = col * 26 + ord(ch) - 64
    return int(m[2]) - 1, col - 1


class _UsedArea:
    """What both sheet scanners share: the used area and the limits it must stay within.
    Subclasses set `limits`, `file`, `sheet`, `cells` and the bounds `lo_r, hi_r, lo_c, hi_c`."""

    def _used(self, r: int, c: int, rows: int = 1, cols: int = 1) -> None:
        """Count a block of used cells (ODS repeats rows and columns) and refuse one that
        lies outside the limits; the used area grows to include it."""
        limits = self.limits
        last_r, last_c = r + rows - 1, c + cols - 1
        self.cells += rows * cols
        if last_r >= limits.max_rows or last_c >= limits.max_columns:
            raise FormError(
                f"{self.file}: sheet {self.sheet} có ô ở {_col_letter(last_c)}{last_r + 1}, "
                f"ngoài vùng biểu mẫu (tối đa {_n(limits.max_rows)} dòng, {limits.max_columns} "
                "cột) / a cell far outside the form; chép số liệu vào biểu mẫu gốc rồi gửi lại"
            )
        if self.cells > limits.max_cells:
            raise FormError(
                f"{self.file}: sheet {self.sheet} có hơn {_n(limits.max_cells)} ô có dữ liệu / "
                "too many cells; chép số liệu vào biểu mẫu gốc rồi gửi lại"
            )
        self.lo_r, self.hi_r = min(self.lo_r, r), max(self.hi_r, last_r)
        self.lo_c, self.hi_c = min(self.lo_c, c), max(self.hi_c, last_c)


class _SheetScan(_UsedArea):
    """One pass over a sheet's XML with the positions calamine gives cells (a row without `r`
    follows the previous one, a cell without `r` the previous cell): the extent of the cells
    holding a value, refused past the limits as soon as it is seen, the formula cells
    without a calculated value and the numbers in a cell format of `percent_styles`."""

    def __init__(
        self,
        file: str,
        sheet: str,
        limits: ReadLimits,
        *,
        record_formulas: bool,
        percent_styles: frozenset[int] = frozenset(),
    ):
        self.file, self.sheet, self.limits = file, sheet, limits
        self.record_formulas = record_formulas
        self.percent_styles = percent_styles
        self.percent_cells: set[tuple[int, int]] = set()
        self.percent = False  # the current cell is a number in a percent format
        self.row = self.col = -1
        self.cell: tuple[int, int] | None = None
        self.has_value = self.has_formula = self.has_v = self.in_v = self.text_type = False
        self.in_data = False
        self.elements = self.cells = 0
        self.lo_r = self.lo_c = 1 << 62
        self.hi_r = self.hi_c = -1
        self.formula_no_value: set[tuple[int, int]] = set()

    def run(self, fh) -> None:
        try:
            _xml_events(fh, self.start, self.end, self.text)
        except (expat.ExpatError, ValueError):
            raise _corrupt(self.file, f"sheet {self.sheet}") from None
        if self.hi_r < 0:
            return
        area = (self.hi_r - self.lo_r + 1) * (self.hi_c - self.lo_c + 1)
        if area > self.limits.max_cells:
            first = f"{_col_letter(self.lo_c)}{self.lo_r + 1}"
            last = f"{_col_letter(self.hi_c)}{self.hi_r + 1}"
            raise FormError(
                f"{self.file}: sheet {self.sheet} có số liệu trải từ ô {first} đến {last} "
                f"({_n(area)} ô, giới hạn {_n(self.limits.max_cells)}) / data spread over too large "
                "an area; chép số liệu vào biểu mẫu gốc rồi gửi lại"
            )

    def start(self, tag: str, attrs: dict) -> None:
        self.elements += 1
        if self.elements > 4 * self.limits.max_cells + 100_000:
            raise FormError(
                f"{self.file}: sheet {self.sheet} quá lớn / sheet too large; chép số liệu vào "
                "biểu mẫu gốc rồi gửi lại"
            )
        tag = tag.rpartition(":")[2]
        if not self.in_data:  # cells live in <sheetData> only, as calamine reads them
            self.in_data = tag == "sheetData"
        elif tag == "c":
            ref = attrs.get("r")
            pos = _parse_ref(ref) if ref else (self.row, self.col + 1)
            if pos is None or pos[0] < 0 or pos[1] < 0:
                raise _corrupt(self.file, f"sheet {self.sheet}, ô '{ref}'")
            self.cell, self.col = pos, pos[1]
            self.has_value = self.has_formula = self.has_v = False
            self.text_type = attrs.get("t") in ("str", "s", "inlineStr")
            style = attrs.get("s", "0")
            self.percent = (
                attrs.get("t", "n") == "n"
                and style.isdigit()
                and len(style) < 10
                and int(style) in self.percent_styles
            )
        elif tag == "row":
            r = attrs.get("r", "")
            self.row = int(r) - 1 if r.isdigit() else self.row + 1
            self.col = -1
        elif self.cell is not None:
            if tag == "v":
                self.in_v = self.has_v = True
            elif tag == "is":
                self.has_value = True
            elif tag == "f":
                self.has_formula = True

    def text(self, data: str) -> None:
        if self.in_v and data.strip():
            self.has_value = True

    def end(self, tag: str) -> None:
        tag = tag.rpartition(":")[2]
        if tag == "sheetData":
            self.in_data = False
        elif tag == "v":
            self.in_v = False
        elif tag == "c" and self.cell is not None:
            if self.has_value:
                self._used(*self.cell)
                if self.percent and len(self.percent_cells) < 100_000:
                    self.percent_cells.add(self.cell)
            elif self.has_formula and self.record_formulas and not (self.has_v and self.text_type):
                # no <v>, or openpyxl's empty <v></v> on a number; Excel's calculated ""
                # is an empty <v> on a t="str" cell and is a real blank
                r, c = self.cell
                if (
                    r < self.limits.max_rows
                    and c < self.limits.max_columns
                    and len(self.formula_no_value) < 100_000
                ):
                    self.formula_no_value.add(self.cell)
            self.cell = None


def inspect_ods(path: Path, limits: ReadLimits) -> None:
    """The same for an OpenDocument sheet (LibreOffice): the zip, then content.xml's tables,
    where one element may stand for a million repeated rows or cells."""
    with _open_zip(path) as zf:
        _check_zip(zf, path, limits)
        part = next((i.filename for i in zf.infolist() if i.filename == "content.xml"), None)
        if part is None:
            raise _corrupt(path.name, "thiếu content.xml")
        scan = _OdsScan(path.name, limits)
        with zf.open(part) as fh:
            scan.run(fh)


class _OdsScan(_UsedArea):
    """Rows and cells of every table with their repeat counts: the extent of the cells that
    hold a value (a value type, a formula or text), refused past the limits."""

    def __init__(self, file: str, limits: ReadLimits):
        self.file, self.limits = file, limits
        self.sheet = ""
        self.row = self.row_span = self.col = 0
        self.cell: tuple[int, int, int] | None = None  # first column, columns, rows
        self.valued = False
        self.elements = self.cells = 0
        self.lo_r = self.lo_c = 1 << 62
        self.hi_r = self.hi_c = -1

    def run(self, fh) -> None:
        try:
            _xml_events(fh, self.start, self.end)
        except (expat.ExpatError, ValueError):
            raise _corrupt(self.file, "content.xml") from None
        self._close_table()

    @staticmethod
    def _repeat(attrs: dict, name: str) -> int:
        raw = attrs.get(name, "1")
        return int(raw) if raw.isdigit() and 0 < len(raw) < 12 else 1

    def start(self, tag: str, attrs: dict) -> None:
        self.elements += 1
        if self.elements > 4 * self.limits.max_cells + 100_000:
            raise FormError(
                f"{self.file}: bảng tính quá lớn / spreadsheet too large; chép số liệu vào biểu "
                "mẫu gốc rồi gửi lại"
            )
        if tag == "table:table":
            self._close_table()
            self.sheet = attrs.get("table:name", "")
            self.row = self.row_span = 0
        elif tag == "table:table-row":
            self.row += self.row_span
            self.row_span = self._repeat(attrs, "table:number-rows-repeated")
            self.col = 0
        elif tag in ("table:table-cell", "table:covered-table-cell"):
            span = self._repeat(attrs, "table:number-columns-repeated")
            self.cell = (self.col, span, self.row_span)
            self.col += span
            self.valued = "office:value-type" in attrs or "table:formula" in attrs
        elif self.cell is not None and tag.startswith("text:"):
            self.valued = True

    def end(self, tag: str) -> None:
        if tag in ("table:table-cell", "table:covered-table-cell") and self.cell is not None:
            if self.valued:
                col, span, rows = self.cell
                self._used(self.row, col, rows, span)
            self.cell = None

    def _close_table(self) -> None:
        if self.hi_r >= 0:
            area = (self.hi_r - self.lo_r + 1) * (self.hi_c - self.lo_c + 1)
            if area > self.limits.max_cells:
                first = f"{_col_letter(self.lo_c)}{self.lo_r + 1}"
                last = f"{_col_letter(self.hi_c)}{self.hi_r + 1}"
                raise FormError(
                    f"{self.file}: sheet {self.sheet} có số liệu trải từ ô {first} đến {last} "
                    f"({_n(area)} ô, giới hạn {_n(self.limits.max_cells)}) / data spread over too "
                    "large an area; chép số liệu vào biểu mẫu gốc rồi gửi lại"
                )
        self.lo_r = self.lo_c = 1 << 62
        self.hi_r = self.hi_c = -1
        self.cells = 0


# calamine reads what the pre-check let through (and, in a worker, what it cannot check)


def _read_workbook(path: Path, limits: ReadLimits, plan: XlsxPlan | None) -> ParsedFile:
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
        names = wb.sheet_names
        if len(names) > limits.max_sheets:
            raise FormError(
                f"{path.name}: tệp có {len(names)} sheet, quá giới hạn {limits.max_sheets} / too "
                "many sheets; dùng biểu mẫu đã gửi kèm"
            )
        if not names:
            raise _corrupt(path.name, "không có sheet nào / no sheets")
        meta: dict[str, str] = {}
        if META_SHEET in names:
            sheet = wb.get_sheet_by_name(META_SHEET)
            _check_extent(sheet, path.name, limits)
            for row in sheet.to_python(nrows=50):
                if len(row) >= 2 and row[0]:
                    meta[str(row[0]).strip()] = str(row[1]).strip()
        sheet_name = plan.form_sheet if plan else (FORM_SHEET if FORM_SHEET in names else names[0])
        sheet = wb.get_sheet_by_name(sheet_name)
        _check_extent(sheet, path.name, limits)
        grid = sheet.to_python(nrows=limits.max_rows)
        top, left = sheet.start or (0, 0)
    except FormError:
        raise
    except Exception as exc:  # calamine raises its own types for every broken file
        raise FormError(
            f"{path.name}: không đọc được tệp ({type(exc).__name__}: {exc}) / unreadable workbook; "
            "lưu lại bằng Excel dạng .xlsx rồi gửi lại"
        ) from None
    header_row, code_col, value_col = _find_header(grid, path.name)
    no_value = plan.formula_no_value if plan else set()
    percent = plan.percent_cells if plan else set()
    parsed = ParsedFile(meta=meta)
    for r in range(header_row + 1, len(grid)):
        row = grid[r]
        code = row[code_col] if code_col < len(row) else None
        if code in (None, ""):
            continue
        raw = row[value_col] if value_col < len(row) else None
        at = (top + r, left + value_col)
        item = {
            "indicator": str(code).strip(),
            "raw": raw,
            "cell": f"{sheet_name}!{_col_letter(at[1])}{at[0] + 1}",
        }
        if at in no_value and raw in (None, ""):
            item["raw"], item["problem"] = None, "formula_no_value"
        elif at in percent and isinstance(raw, int | float) and not isinstance(raw, bool):
            item["percent_cell"] = True  # Excel's 0.9 shown as 90 %: validation reads 90
        parsed.rows.append(item)
    return parsed


def _check_extent(sheet, name: str, limits: ReadLimits) -> None:
    """For formats the pre-check cannot scan (.xls, .xlsb): calamine has read the sheet;
    refuse it before it becomes Python objects."""
    end = sheet.end
    if end is None:
        return
    if end[0] >= limits.max_rows or end[1] >= limits.max_columns:
        raise FormError(
            f"{name}: sheet {sheet.name} có ô ở {_col_letter(end[1])}{end[0] + 1}, ngoài vùng "
            f"biểu mẫu (tối đa {_n(limits.max_rows)} dòng, {limits.max_columns} cột) / a cell far "
            "outside the form; chép số liệu vào biểu mẫu gốc rồi gửi lại"
        )
    if sheet.height * sheet.width > limits.max_cells:
        raise FormError(
            f"{name}: sheet {sheet.name} quá lớn ({_n(sheet.height)} x {_n(sheet.width)} ô) / sheet "
            "too large; chép số liệu vào biểu mẫu gốc rồi gửi lại"
        )


def _find_header(grid: list[list], name: str) -> tuple[int, int, int]:
    for r, row in enumerate(grid[:40]):
        labels = [str(v).strip().lower() if v is not None else "" for v in row]
        if "mã chỉ tiêu" in labels and "giá trị" in labels:
            return r, labels.index("mã chỉ tiêu"), labels.index("giá trị")
    raise FormError(
        f"{name}: không tìm thấy dòng tiêu đề có cột 'Mã chỉ tiêu' và 'Giá trị' / header row "
        "not found; dùng biểu mẫu đã được gửi kèm yêu cầu báo cáo"
    )


def _col_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# ---- CSV --------------------------------------------------------------------------------

_CSV_COLUMNS = {
    "don_vi": "unit",
    "unit": "unit",
    "ky_bao_cao": "period",
    "period": "period",
    "ma_chi_tieu": "indicator",
    "indicator": "indicator",
    "gia_tri": "raw",
    "value": "raw",
    "ma_bieu_mau": "token",
    "token": "token",
}

_BOMS = (  # UTF-32 first: its LE BOM starts like UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_text(data: bytes, name: str) -> tuple[str, str]:
    """(text, encoding) of a CSV's bytes: a BOM, else UTF-16 told by its NUL bytes, else
    UTF-8, else Windows-1258 (Vietnamese legacy) or cp1252 when that gives text without control
    characters. Vietnamese written with combining tone marks (cp1258 does) comes back
    composed (NFC). Undecodable: FormError naming the file and what to do."""
    text = encoding = None
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                text, encoding = data[len(bom) :].decode(enc), enc
            except UnicodeDecodeError:
                raise _undecodable(name, enc) from None
            break
    if text is None and (enc := _utf16_by_nuls(data[:4096])):
        try:
            text, encoding = data.decode(enc), enc
        except UnicodeDecodeError:
            raise _undecodable(name, enc) from None
    if text is None:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            for enc in ("cp1258", "cp1252"):
                try:
                    candidate = data.decode(enc)
                except UnicodeDecodeError:
                    continue
                if not _CONTROL.search(candidate.rstrip("\x1a")):
                    text, encoding = candidate, enc
                    break
            else:
                raise _undecodable(name) from None
    text = text.rstrip("\x1a")  # a DOS end-of-file mark
    if not encoding.startswith("utf-8") and _CONTROL.search(text):
        raise _undecodable(name, encoding)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text, encoding


def _utf16_by_nuls(sample: bytes) -> str | None:
    """UTF-16 without a BOM: mostly-ASCII text has a NUL in every other byte."""
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    if odd >= pairs * 0.3 and even <= odd // 10:
        return "utf-16-le"
    if even >= pairs * 0.3 and odd <= even // 10:
        return "utf-16-be"
    return None


def _undecodable(name: str, encoding: str = "") -> FormError:
    tried = f" (đã thử {encoding})" if encoding else ""
    return FormError(
        f"{name}: không nhận ra bảng mã của tệp CSV{tried} / unknown text encoding, not "
        "UTF-8; mở tệp bằng Excel, chọn Lưu thành 'CSV UTF-8 (Comma delimited)' rồi gửi lại"
    )


def _header_key(label: str) -> str:
    """'Mã biểu mẫu' -> 'ma_bieu_mau': headers typed with or without Vietnamese marks."""
    s = unicodedata.normalize("NFD", label.strip().lower().replace("đ", "d"))
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    return re.sub(r"[\s\-]+", "_", s)


def _read_csv(path: Path, limits: ReadLimits) -> ParsedFile:
    text, encoding = decode_text(path.read_bytes(), path.name)
    first = text[: text.find("\n")] if "\n" in text[:4096] else text[:4096]
    first = first.split("\r", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    # newline=None: universal newlines, so a CSV saved with CR line ends (Excel for Mac's
    # "CSV (Macintosh)") reads like any other
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
    try:
        parsed = _read_csv_rows(reader, path, limits)
    except csv.Error as exc:  # an oversized field, a stray quote: a reason, not a crash
        raise FormError(
            f"{path.name}: CSV không đọc được ({exc}) / malformed CSV; lưu lại dạng CSV UTF-8"
        ) from None
    parsed.encoding = encoding
    return parsed


def _read_csv_rows(reader, path: Path, limits: ReadLimits) -> ParsedFile:
    header = [_header_key(h) for h in next(reader, [])]
    cols = [_CSV_COLUMNS.get(h) for h in header]
    if not {"unit", "period", "indicator", "raw"} <= set(cols):
        raise FormError(
            f"{path.name}: CSV cần các cột don_vi, ky_bao_cao, ma_chi_tieu, gia_tri / CSV needs "
            f"columns unit, period, indicator, value; found {header[: limits.max_columns]}"
        )
    if len(header) > limits.max_columns:
        raise FormError(
            f"{path.name}: CSV có {_n(len(header))} cột, quá giới hạn {limits.max_columns} / too "
            "many columns; chỉ giữ các cột don_vi, ky_bao_cao, ma_chi_tieu, gia_tri"
        )
    wanted = [(i, c) for i, c in enumerate(cols) if c]
    raw_col = _col_letter(cols.index("raw"))
    has_token = "token" in cols
    same: dict[str, str] = {}  # one string object per repeated unit/period/code
    rows: list[dict] = []
    count = 0
    for n, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        count += 1
        if count > limits.max_rows:
            raise FormError(
                f"{path.name}: CSV có hơn {_n(limits.max_rows)} dòng số liệu / too many rows; chia "
                "thành nhiều tệp nhỏ hơn rồi gửi lại"
            )
        rec = {c: row[i].strip() for i, c in wanted if i < len(row)}
        item = {
            "unit": same.setdefault(u := rec.get("unit", ""), u),
            "period": same.setdefault(p := rec.get("period", ""), p),
            "indicator": same.setdefault(k := rec.get("indicator", ""), k),
            "raw": rec.get("raw") or None,
            "cell": f"{raw_col}{n}",
        }
        if has_token:
            item["token"] = same.setdefault(t := rec.get("token", ""), t)
        rows.append(item)
    return ParsedFile(rows=rows)
