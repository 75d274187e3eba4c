"""Hostile files, made on the spot (no binary fixture is committed): what a careless, unlucky
or malicious sender puts in the inbox. Each maker returns the file's bytes.

`python -m reliability.hostile slow-write SRC DST SECONDS` copies SRC to DST in small pieces
over SECONDS, as a slow network share or a mail client saving an attachment does.
"""

from __future__ import annotations

import io
import struct
import sys
import time
import zipfile
import zlib
from pathlib import Path

from openpyxl import Workbook

from reliability.harness import FIGURES, PERIOD
from reliability.returns import FormFiller, long_csv, unit_rows

# Unit text that must stay text in every output: a footnote marker, a Markdown link, an
# HTML tag, emphasis and a template expression.
MARKUP_TEXT = (
    "Đã tuyển 3 viên chức [^99] theo [hướng dẫn](http://evil.example/x) "
    "<b>CHEN-VAO</b> **đậm** {{ 7*7 }}"
)


def _xlsx(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def far_cell() -> bytes:
    """A ~7 kB .xlsx whose only cell is the last one a sheet can have (XFD1048576): a reader
    that builds the whole grid asks for 17 billion cells."""
    wb = Workbook()
    ws = wb.active
    ws.title = "BaoCao"
    ws["XFD1048576"] = "x"
    ws.sheet_properties.tabColor = "FF0000"
    return _xlsx(wb)


def _patch_sheet(xlsx: bytes, old: str, new: str) -> bytes:
    """The same workbook with `old` replaced by `new` in its first worksheet's XML."""
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    done = False
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml" and old.encode() in data:
                data = data.replace(old.encode(), new.encode(), 1)
                done = True
            dst.writestr(info, data)
    if not done:
        raise ValueError(f"{old!r} not found in the sheet")
    return out.getvalue()


def money_1e400(tckh: FormFiller) -> bytes:
    """TCKH's own form (its token) with the revenue cell typed as 1e400 (beyond a double)."""
    values = {**FIGURES["TCKH"], "tc_thu_nsnn": 987654.125}
    return _patch_sheet(tckh.fill(values), "<v>987654.125</v>", "<v>1e400</v>")


def dossiers_1e30(motcua: FormFiller) -> bytes:
    """The one-stop desk's form with 10^30 dossiers received and settled (the sum still holds)."""
    values = {**FIGURES["MOTCUA"], "tthc_tiep_nhan": 1e30, "tthc_da_giai_quyet": 1e30}
    values["tthc_dang_giai_quyet"] = 0
    return motcua.fill(values)


def formula_without_value(tp: FormFiller) -> bytes:
    """TP's form where one value is a formula saved without its computed value (openpyxl, a
    script, LibreOffice with recalculation off)."""
    return tp.fill({**FIGURES["TP"], "tp_vb_ra_soat": "=2+3"})


def indicator_twice(vhtt: FormFiller) -> bytes:
    """VHTT's form with one indicator entered on a second row with another value."""
    return vhtt.fill(FIGURES["VHTT"], extra_rows=[("vhtt_vb_dien_tu_pct", 95)])


def zip_bomb(uncompressed_mb: int = 190) -> bytes:
    """A workbook whose sheet inflates to `uncompressed_mb` MB of rows (a few hundred kB on
    disk): just under a naive 200 MB cap, millions of cells for a reader without limits."""
    wb = Workbook()
    wb.active.title = "BaoCao"
    base = zipfile.ZipFile(io.BytesIO(_xlsx(wb)))
    out = io.BytesIO()
    row = b"<row><c><v>1</v></c><c><v>2</v></c><c><v>3</v></c></row>" * 1000
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as dst:
        for info in base.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(info, base.read(info.filename))
                continue
            with dst.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
                sheet.write(
                    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                    b"<sheetData>"
                )
                for _ in range(uncompressed_mb * 1_000_000 // len(row)):
                    sheet.write(row)
                sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


def truncated(xlsx: bytes) -> bytes:
    """The first half of a good form, as an interrupted download leaves it."""
    return xlsx[: len(xlsx) // 2]


def many_sheets(n: int = 300) -> bytes:
    wb = Workbook()
    wb.active.title = "Sheet1"
    for i in range(2, n + 1):
        wb.create_sheet(f"Sheet{i}")["A1"] = i
    return _xlsx(wb)


def utf16_csv(tokens: dict[str, str]) -> bytes:
    """TP's figures as a CSV saved as 'Unicode Text' (UTF-16 with BOM) by Excel."""
    return long_csv(unit_rows("TP", utf16_values()), tokens, encoding="utf-16")


def utf16_values() -> dict:
    return {**FIGURES["TP"], "tp_nguon": "Báo cáo số 19/BC-TP ngày 08/3/2022 (bản UTF-16)"}


def cp1258_values() -> dict:
    """NV's figures with the same markup-laden text as its good file (whichever of the two
    ends up latest, the report must show that text as typed)."""
    return {**FIGURES["NV"], "nv_tuyen_dung": MARKUP_TEXT}


def cp1258_csv(tokens: dict[str, str]) -> bytes:
    """NV's figures (with Vietnamese text) saved in Windows-1258, as old Vietnamese Windows
    software does."""
    return long_csv(unit_rows("NV", cp1258_values()), tokens, encoding="cp1258")


def huge_csv(unit: str, token: str, rows: int = 100_000) -> bytes:
    """A 100,000-row CSV for one unit: its codes over and over and codes that do not exist."""
    codes = list(FIGURES[unit]) + [f"chi_tieu_la_{i}" for i in range(50)]
    data = [(unit, PERIOD, codes[i % len(codes)], i % 97) for i in range(rows)]
    return long_csv(data, {unit: token})


def no_token_csv(unit: str, values: dict) -> bytes:
    """A CSV naming `unit` without its form code (anyone could have written it)."""
    return long_csv(unit_rows(unit, values), None)


def other_period_csv(unit: str, token: str, period: str) -> bytes:
    return long_csv(unit_rows(unit, period=period), {unit: token})


def pdf() -> bytes:
    """A one-page PDF (a scanned report, say)."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
    ]
    stream = b"BT /F1 12 Tf 72 720 Td (Bao cao CCHC Quy I/2022) Tj ET"
    objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + o + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    )
    return out.getvalue()


def png(width: int = 64, height: int = 32) -> bytes:
    """A small grey PNG (a photo of the paper form, say)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes([128]) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def slow_write(src: Path, dst: Path, seconds: float, pieces: int = 40) -> None:
    """Copy src to dst in `pieces` appends spread over `seconds` (the file grows in place)."""
    data = src.read_bytes()
    size = -(-len(data) // pieces)
    with dst.open("wb") as fh:
        for i in range(0, len(data), size):
            fh.write(data[i : i + size])
            fh.flush()
            time.sleep(seconds / pieces)


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "slow-write":
        slow_write(Path(argv[1]), Path(argv[2]), float(argv[3]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
