"""The collection form: a pre-filled .xlsx per unit and period, and reading it back.

Forms are written with XlsxWriter (several times faster than openpyxl for thousands of
forms). The visible sheet lists the indicators the unit owns, one row each, with the value to fill
in column E. A very hidden sheet `_baocao` carries the report, period, unit and request
token, so a returned file identifies itself whatever it was renamed to. Returned files are
read with python-calamine (fast, and it reads every Excel generation); a CSV in long form
(`don_vi,ky_bao_cao,ma_chi_tieu,gia_tri`) is accepted too, for one unit or many.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import xlsxwriter

from baocao import vnformat
from baocao.config import Body, Indicator, ReportDef, Unit
from baocao.periods import Period

FORM_SHEET = "BaoCao"
META_SHEET = "_baocao"
HEADER = ("STT", "Mã chỉ tiêu", "Chỉ tiêu", "Đơn vị tính", "Giá trị", "Ghi chú")
FIRST_ROW = 8
VALUE_COL = "E"
MAX_UNZIPPED_BYTES = 200_000_000  # a real form is a few kB; more is a zip bomb


class FormError(Exception):
    """A file that cannot be read as a form; the message says why and what to do."""


@dataclass
class ParsedFile:
    """What a returned file says: who, which period, and raw values with their cells."""

    meta: dict[str, str] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)  # unit, indicator, raw, cell


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
) -> bytes:
    """The unit's form as .xlsx bytes (XlsxWriter: a province writes thousands of them);
    `prefill` puts values in (the example's filled forms use it)."""
    prefill = prefill or {}
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = wb.add_format({"bold": True})
    top = wb.add_format({"text_wrap": True, "valign": "top"})
    fill = {"locked": False, "bg_color": "#FFF2CC", "valign": "top", "border": 1}
    value_formats = {
        "date": wb.add_format({**fill, "num_format": "DD/MM/YYYY"}),
        "text": wb.add_format({**fill, "text_wrap": True}),
        "decimal": wb.add_format({**fill, "num_format": "#,##0.000"}),
        "number": wb.add_format({**fill, "num_format": "#,##0"}),
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
    ws.write("A4", f"Đơn vị báo cáo: {unit.name} (mã {unit.code})")
    ws.write("A5", f"Hạn gửi: trước 24 giờ ngày {vnformat.date(last_day)}")
    ws.write(
        "A6",
        "Chỉ điền cột E (Giá trị). Không đổi tên sheet, không sửa cột Mã chỉ tiêu.",
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
            ind.type if ind.type in ("date", "text") else ("decimal" if ind.decimals else "number")
        )
        value = prefill.get(ind.code)
        if value is None:
            ws.write_blank(r, 4, None, value_formats[kind])
        elif kind == "date":
            ws.write_datetime(r, 4, dt.datetime.combine(value, dt.time()), value_formats[kind])
        else:
            ws.write(r, 4, value, value_formats[kind])
        if kind == "date":
            ws.data_validation(
                r,
                4,
                r,
                4,
                {
                    "validate": "date",
                    "criteria": ">",
                    "value": dt.date(2000, 1, 1),
                    "error_message": "Nhập ngày dd/mm/yyyy / enter a date",
                },
            )
        elif kind != "text":
            ws.data_validation(
                r,
                4,
                r,
                4,
                {
                    "validate": "decimal",
                    "criteria": ">=",
                    "value": 0,
                    "error_message": "Nhập một số không âm / enter a non-negative number",
                },
            )
    for col, width in enumerate((5, 22, 60, 12, 18, 16)):
        ws.set_column(col, col, width)
    ws.set_paper(9)  # A4, landscape, one page wide: clerks print it
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.protect()  # labels and codes locked, column E open; no password
    meta = wb.add_worksheet(META_SHEET)
    for row, pair in enumerate(
        (
            ("form_version", "1"),
            ("report_id", report.id),
            ("period", period.code),
            ("unit_code", unit.code),
            ("token", token),
        )
    ):
        meta.write_row(row, 0, pair)
    meta.very_hidden()
    wb.close()
    return buf.getvalue()


# ---- reading ----------------------------------------------------------------------------


def read_file(path: Path) -> ParsedFile:
    """Parse a returned .xlsx/.xls/.ods or .csv; raise FormError with a user-facing reason."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        _check_zip(path)
    elif suffix not in (".xls", ".xlsb", ".ods"):
        raise FormError(
            f"{path.name}: định dạng '{suffix}' không được hỗ trợ / unsupported file type; "
            "gửi tệp .xlsx (biểu mẫu đã gửi kèm) hoặc .csv"
        )
    return _read_workbook(path)


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(i.file_size for i in zf.infolist())
    except zipfile.BadZipFile:
        raise FormError(
            f"{path.name}: tệp bị hỏng, không phải tệp Excel hợp lệ / corrupt or not an .xlsx file; "
            "mở lại biểu mẫu bằng Excel, lưu dạng .xlsx rồi gửi lại"
        ) from None
    if total > MAX_UNZIPPED_BYTES:
        raise FormError(
            f"{path.name}: tệp giải nén quá lớn ({total:,} byte) / refused as oversized"
        )


def _read_workbook(path: Path) -> ParsedFile:
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
        names = wb.sheet_names
        meta: dict[str, str] = {}
        if META_SHEET in names:
            for row in wb.get_sheet_by_name(META_SHEET).to_python():
                if len(row) >= 2 and row[0]:
                    meta[str(row[0]).strip()] = str(row[1]).strip()
        sheet_name = FORM_SHEET if FORM_SHEET in names else names[0]
        grid = wb.get_sheet_by_name(sheet_name).to_python()
    except FormError:
        raise
    except Exception as exc:  # calamine raises its own types for every broken file
        raise FormError(
            f"{path.name}: không đọc được tệp ({type(exc).__name__}: {exc}) / unreadable workbook; "
            "lưu lại bằng Excel dạng .xlsx rồi gửi lại"
        ) from None
    header_row, code_col, value_col = _find_header(grid, path.name)
    parsed = ParsedFile(meta=meta)
    for r in range(header_row + 1, len(grid)):
        row = grid[r]
        code = row[code_col] if code_col < len(row) else None
        if code in (None, ""):
            continue
        raw = row[value_col] if value_col < len(row) else None
        cell = f"{sheet_name}!{_col_letter(value_col)}{r + 1}"
        parsed.rows.append({"indicator": str(code).strip(), "raw": raw, "cell": cell})
    return parsed


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


def _read_csv(path: Path) -> ParsedFile:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormError(
            f"{path.name}: CSV không phải UTF-8 / not UTF-8; lưu lại với mã hóa UTF-8"
        ) from None
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    # newline=None: universal newlines, so a CSV saved with CR line ends (Excel for Mac's
    # "CSV (Macintosh)") reads like any other
    reader = csv.reader(io.StringIO(text, newline=None), dialect)
    try:
        return _read_csv_rows(reader, path)
    except csv.Error as exc:  # an oversized field, a stray quote: a reason, not a crash
        raise FormError(
            f"{path.name}: CSV không đọc được ({exc}) / malformed CSV; lưu lại dạng CSV UTF-8"
        ) from None


def _read_csv_rows(reader, path: Path) -> ParsedFile:
    header = [h.strip().lower() for h in next(reader, [])]
    cols = [_CSV_COLUMNS.get(h) for h in header]
    if not {"unit", "period", "indicator", "raw"} <= set(cols):
        raise FormError(
            f"{path.name}: CSV cần các cột don_vi, ky_bao_cao, ma_chi_tieu, gia_tri / CSV needs "
            f"columns unit, period, indicator, value; found {header}"
        )
    parsed = ParsedFile()
    for n, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        rec = {cols[i]: v.strip() for i, v in enumerate(row) if i < len(cols) and cols[i]}
        raw_col = _col_letter(cols.index("raw"))
        parsed.rows.append(
            {
                "unit": rec.get("unit", ""),
                "period": rec.get("period", ""),
                "indicator": rec.get("indicator", ""),
                "raw": rec.get("raw") or None,
                "cell": f"{raw_col}{n}",
                **({"token": rec["token"]} if rec.get("token") else {}),
            }
        )
    return parsed
