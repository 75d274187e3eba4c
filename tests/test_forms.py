"""The collection form: written for a unit, read back; hostile files give a FormError only."""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import io
import re
import struct
import unicodedata
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from baocao import crud
from baocao.config import load_config
from baocao.db import session_scope
from baocao.forms import (
    FORM_SHEET,
    META_SHEET,
    FormError,
    FormStamper,
    ReadLimits,
    build_form,
    read_file,
)
from baocao.periods import Period, end_of_day, parse_moment
from baocao.runtime import build_runtime
from baocao.settings import PROJECT_ROOT, get_settings
from tasks.collect import open_period
from tasks.intake import ingest_files
from tests.conftest import edited_config, request_tokens

CFG = load_config(PROJECT_ROOT / "config")
REPORT = CFG.report("cchc-quarterly")
PERIOD = Period.parse("2022-Q1")
TCKH_INDICATORS = CFG.indicators_of(REPORT, "TCKH")


def _form(unit: str = "TCKH", token: str = "tok-123", prefill: dict | None = None) -> bytes:
    return build_form(
        body=CFG.body,
        report=REPORT,
        unit=CFG.unit_map[unit],
        period=PERIOD,
        indicators=CFG.indicators_of(REPORT, unit),
        token=token,
        deadline=end_of_day(dt.date(2022, 3, 16)),
        prefill=prefill,
    )


@pytest.fixture(scope="module")
def form_bytes() -> bytes:
    return _form()


def test_form_reads_back(tmp_path, form_bytes):
    path = tmp_path / "TCKH_2022-Q1.xlsx"
    path.write_bytes(form_bytes)
    parsed = read_file(path)
    assert parsed.meta["unit_code"] == "TCKH"
    assert parsed.meta["period"] == "2022-Q1"
    assert parsed.meta["token"] == "tok-123"
    assert parsed.meta["report_id"] == "cchc-quarterly"
    assert [r["indicator"] for r in parsed.rows] == [i.code for i in TCKH_INDICATORS]
    assert len(parsed.rows) == 21
    assert parsed.rows[0]["cell"] == "BaoCao!E8"
    assert parsed.rows[-1]["cell"] == f"BaoCao!E{8 + len(TCKH_INDICATORS) - 1}"
    assert all(r["raw"] in (None, "") for r in parsed.rows)


def test_prefilled_values_read_back(tmp_path):
    path = tmp_path / "renamed anything.xlsx"
    path.write_bytes(_form("MOTCUA", prefill={"tthc_tiep_nhan": 82, "tthc_da_giai_quyet": 74}))
    parsed = read_file(path)
    assert parsed.meta["unit_code"] == "MOTCUA"
    got = {r["indicator"]: r["raw"] for r in parsed.rows}
    assert got["tthc_tiep_nhan"] == 82
    assert got["tthc_da_giai_quyet"] == 74
    assert got["tthc_dang_giai_quyet"] in (None, "")


def test_meta_sheet_is_very_hidden(form_bytes):
    wb = load_workbook(io.BytesIO(form_bytes))
    assert wb.sheetnames == [FORM_SHEET, META_SHEET]
    assert wb[META_SHEET].sheet_state == "veryHidden"
    assert wb[FORM_SHEET].sheet_state == "visible"


def test_value_cells_unlocked_and_sheet_protected(form_bytes):
    ws = load_workbook(io.BytesIO(form_bytes))[FORM_SHEET]
    assert ws.protection.sheet is True
    last = 8 + len(TCKH_INDICATORS) - 1
    for row in range(8, last + 1):
        assert ws[f"E{row}"].protection.locked is False
        assert ws[f"B{row}"].protection.locked is True  # the code column stays locked
    assert ws["B8"].value == "tc_den_ngay"
    assert ws["E8"].number_format == "DD/MM/YYYY"
    assert ws["B7"].value == "Mã chỉ tiêu" and ws["E7"].value == "Giá trị"
    assert "16/03/2022" in ws["A5"].value  # the deadline's last day
    assert "15/12/2021" in ws["A3"].value and "14/03/2022" in ws["A3"].value


# ---- what the form says is checked ---------------------------------------------------------


def _notes(ws) -> list[str]:
    """The paragraphs under the table: merged across A:F, below the last indicator row."""
    merged = {r.min_row: r for r in ws.merged_cells.ranges}
    out = []
    for row in sorted(merged):
        rng = merged[row]
        assert (rng.min_col, rng.max_col, rng.max_row) == (1, 6, row)  # the table's width
        assert ws.cell(row, 1).alignment.wrap_text is True
        out.append(ws.cell(row, 1).value)
    return out


def _row_of(ws, code: str) -> int:
    return next(r for r in range(8, ws.max_row + 1) if ws[f"B{r}"].value == code)


def test_rules_under_the_table_name_rows_and_labels(form_bytes):
    ws = load_workbook(io.BytesIO(form_bytes))[FORM_SHEET]
    notes = _notes(ws)
    last = 8 + len(TCKH_INDICATORS) - 1
    assert min(r.min_row for r in ws.merged_cells.ranges) == last + 2  # one blank row between
    rows = {code: _row_of(ws, code) for code in ("tc_chi_nsnn", "tc_chi_huyen", "tc_chi_xa")}
    assert rows == {"tc_chi_nsnn": 12, "tc_chi_huyen": 13, "tc_chi_xa": 14}
    assert ws["C12"].value == "Tổng chi ngân sách Nhà nước"
    assert (
        "- Dòng 12 (Tổng chi ngân sách Nhà nước) = Dòng 13 (Chi ngân sách huyện) + Dòng 14 "
        "(Chi ngân sách xã)." in notes
    )
    assert (
        "- Dòng 10 (Thu ngân sách trên địa bàn huyện) không lớn hơn Dòng 9 (Tổng thu ngân sách "
        "Nhà nước)." in notes
    )
    # every rule of TCKH's indicators, and no other unit's
    assert sum(bool(re.match(r"- Dòng \d+ ", n)) for n in notes) == 4 + 5
    assert not any("tc_tong_chi" in n or "tthc" in n for n in notes)  # no internal codes
    assert ws.print_area == f"'{FORM_SHEET}'!$A$1:$F${last + 1 + len(notes)}"
    assert ws.page_setup.orientation == "landscape"
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True  # one page wide
    assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0
    assert ws.print_title_rows == "$7:$7"  # the table's header on every page


def test_the_default_of_a_blank_optional_text_is_on_the_form():
    nv = _notes(load_workbook(io.BytesIO(_form("NV")))[FORM_SHEET])
    assert (
        "- Dòng 13 (Tình hình tuyển dụng công chức, viên chức trong kỳ (đoạn văn)): báo cáo in "
        "“Trong kỳ báo cáo, UBND huyện không tổ chức tuyển dụng công chức, viên chức.”" in nv
    )
    tp = _notes(load_workbook(io.BytesIO(_form("TP")))[FORM_SHEET])
    assert "- Dòng 10 (Văn bản nguồn số liệu (số, ngày báo cáo của Phòng)): (không in gì)" in tp
    assert not any("Dòng 1" in n and "=" in n for n in tp)  # TP has no rule


def test_a_rule_with_another_units_figures_is_said_as_what_the_office_compares():
    from baocao.config import NotAboveRule, SumRule
    from baocao.forms import form_notes

    report = REPORT.model_copy(
        update={
            "sum_rules": (SumRule(id="x", total="tc_dv_tong", parts=("nv_vi_pham",)),),
            "not_above_rules": (
                NotAboveRule(id="y", part="nv_vi_pham", whole="nv_nv_ke_hoach", severity="warning"),
            ),
        }
    )
    notes = form_notes(report, CFG.indicators_of(REPORT, "NV"))
    assert notes.rules == [
        "Khi tổng hợp, Văn phòng đối chiếu: Tổng số đơn vị sự nghiệp công lập thuộc huyện (do "
        "đơn vị khác báo cáo) = Dòng 12 (Số CBCCVC vi phạm kỷ luật kỷ cương hành chính).",
        "Dòng 12 (Số CBCCVC vi phạm kỷ luật kỷ cương hành chính) không lớn hơn Dòng 9 (Số nhiệm "
        "vụ CCHC đề ra trong kỳ theo Kế hoạch) (nếu không khớp, Văn phòng nhắc kiểm tra lại, "
        "không trả biểu mẫu).",
    ]


def _validations(ws) -> dict[str, object]:
    return {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}


def test_each_value_cell_refuses_what_its_indicator_cannot_hold(form_bytes):
    ws = load_workbook(io.BytesIO(form_bytes))[FORM_SHEET]
    dv = _validations(ws)
    assert dv["E8"].type == "date"  # tc_den_ngay
    for code in ("tc_thu_nsnn", "dt_giai_ngan"):  # amounts: decimals welcome, not below 0
        v = dv[f"E{_row_of(ws, code)}"]
        assert (v.type, v.operator, float(v.formula1)) == ("decimal", "greaterThanOrEqual", 0)
    for code in ("tc_kl_thanh_tra_ton", "tc_dv_tu_chu"):  # counts: whole numbers only
        v = dv[f"E{_row_of(ws, code)}"]
        assert (v.type, v.operator, float(v.formula1)) == ("whole", "greaterThanOrEqual", 0)
        assert "số nguyên" in v.error
    tong = dv[f"E{_row_of(ws, 'tc_dv_tong')}"]  # min: 1
    assert (tong.type, float(tong.formula1)) == ("whole", 1)
    assert all(v.showErrorMessage for v in dv.values())
    nv = load_workbook(io.BytesIO(_form("NV")))[FORM_SHEET]
    dv = _validations(nv)
    pct = dv[f"E{_row_of(nv, 'nv_nv_tinh_giao_pct')}"]
    assert pct.operator in (None, "between")  # between is the default
    assert (pct.type, float(pct.formula1), float(pct.formula2)) == (
        "decimal",
        0,
        1,
    )  # Excel's percent: 0 % to 100 %
    assert f"E{_row_of(nv, 'nv_tuyen_dung')}" not in dv  # a paragraph takes any text


def test_a_percent_cell_has_excels_percent_format(tmp_path):
    content = _form("NV", prefill={"nv_nv_tinh_giao_pct": 90, "nv_nv_hoan_thanh": 11})
    ws = load_workbook(io.BytesIO(content))[FORM_SHEET]
    row = _row_of(ws, "nv_nv_tinh_giao_pct")
    assert ws[f"E{row}"].number_format == "0.0%"
    assert ws[f"E{row}"].value == pytest.approx(0.9)  # what Excel stores for 90 %
    assert ws[f"D{row}"].value == "%"
    assert ws["E8"].number_format == "#,##0" and ws["E8"].value == 11
    path = tmp_path / "NV.xlsx"
    path.write_bytes(content)
    got = {r["indicator"]: r for r in read_file(path).rows}
    assert got["nv_nv_tinh_giao_pct"]["percent_cell"] is True
    assert got["nv_nv_tinh_giao_pct"]["raw"] == pytest.approx(0.9)
    assert "percent_cell" not in got["nv_nv_hoan_thanh"]


@pytest.mark.parametrize(
    ("number_format", "percent"),
    [
        ("0%", True),  # built-in 9
        ("0.00%", True),  # built-in 10
        ("#,##0.0%", True),  # custom
        ("[Blue]0.0%;[Red]-0.0%", True),
        ('0.0" %"', False),  # a literal sign: the number is what it shows
        ("0.0\\%", False),
        ("General", False),
        ("#,##0.000", False),
    ],
)
def test_a_percent_typed_the_excel_way_is_read_as_a_percentage(tmp_path, number_format, percent):
    """The clerk types 90 % (or types 90 in a cell formatted as percent): Excel stores 0.9."""
    wb = load_workbook(io.BytesIO(_form("NV")))
    ws = wb[FORM_SHEET]
    row = _row_of(ws, "nv_nv_tinh_giao_pct")
    ws[f"E{row}"].value = 0.9
    ws[f"E{row}"].number_format = number_format
    ws["E8"].value = 0.9  # a plain number elsewhere stays a plain number
    path = tmp_path / "NV filled.xlsx"
    wb.save(path)
    got = {r["indicator"]: r for r in read_file(path).rows}
    assert got["nv_nv_tinh_giao_pct"].get("percent_cell", False) is percent
    assert "percent_cell" not in got["nv_nv_hoan_thanh"]


# ---- CSV --------------------------------------------------------------------------------


def test_example_csv_vietnamese_headers():
    parsed = read_file(PROJECT_ROOT / "examples/son-tay-2022-q1/submissions/communes_2022-Q1.csv")
    assert parsed.meta == {}
    assert len(parsed.rows) == 8
    assert parsed.rows[0] == {
        "unit": "SON-LONG",
        "period": "2022-Q1",
        "indicator": "tthc_tiep_nhan",
        "raw": "6",
        "cell": "D2",
    }
    assert {r["unit"] for r in parsed.rows} == {"SON-LONG", "SON-MAU"}


def test_csv_english_headers_semicolons(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(
        "Unit;Period;Indicator;Value\nMOTCUA;2022-Q1;tthc_tiep_nhan;1.234\nMOTCUA;2022-Q1;tthc_pakn;\n",
        encoding="utf-8",
    )
    parsed = read_file(path)
    assert parsed.rows == [
        {
            "unit": "MOTCUA",
            "period": "2022-Q1",
            "indicator": "tthc_tiep_nhan",
            "raw": "1.234",
            "cell": "D2",
        },
        {
            "unit": "MOTCUA",
            "period": "2022-Q1",
            "indicator": "tthc_pakn",
            "raw": None,
            "cell": "D3",
        },
    ]


def test_csv_with_bom_and_reordered_columns(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(
        "\ufeffgia_tri,ma_chi_tieu,don_vi,ky_bao_cao\n7,tthc_tiep_nhan,SON-BUA,2022-Q1\n".encode()
    )
    [row] = read_file(path).rows
    assert row["unit"] == "SON-BUA" and row["raw"] == "7" and row["cell"] == "A2"


def test_csv_with_mac_line_ends(tmp_path):
    """Excel for Mac's "CSV (Macintosh)" ends lines with CR only."""
    path = tmp_path / "mac.csv"
    path.write_bytes(b"don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\rSON-BUA,2022-Q1,tthc_pakn,0\r")
    [row] = read_file(path).rows
    assert row["unit"] == "SON-BUA" and row["indicator"] == "tthc_pakn" and row["raw"] == "0"


# ---- hostile and broken files ------------------------------------------------------------


def _zip_not_xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "xin chào")
    return buf.getvalue()


def _xlsx_without_header() -> bytes:
    wb = Workbook()
    ws = wb.active
    ws["A1"] = "Báo cáo"
    ws["B3"] = "tthc_tiep_nhan"
    ws["C3"] = 82
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


HOSTILE = {
    "random.xlsx": lambda: bytes(range(256)) * 8,
    "empty.xlsx": lambda: b"",
    "notexcel.xlsx": _zip_not_xlsx,
    "truncated.xlsx": lambda: (f := _form())[: len(f) // 2],
    "noheader.xlsx": _xlsx_without_header,
    "binary.csv": lambda: b"don_vi,ky_bao_cao\x00\x01\x02\xff\xfe\x81\x8d\x07" * 50,
    "report.pdf": lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
    "empty.csv": lambda: b"",
    "wrongcols.csv": lambda: b"a,b,c\n1,2,3\n",
    "hugefield.csv": lambda: (
        b'don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\nNV,2022-Q1,nv_vi_pham,"' + b"9" * 200_000 + b'"\n'
    ),
    "random.xls": lambda: bytes(range(256)) * 4,
    "random.ods": lambda: bytes(range(255, -1, -1)) * 4,
    "noextension": lambda: b"PK\x03\x04",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_gives_form_error_naming_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(HOSTILE[name]())
    with pytest.raises(FormError) as exc:
        read_file(path)
    assert name in str(exc.value)


def test_undecodable_csv_says_utf8(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(HOSTILE["binary.csv"]())
    with pytest.raises(FormError, match="UTF-8"):
        read_file(path)


def test_latin1_csv_reads_as_windows_codepage(tmp_path):
    """Not UTF-8, but Windows-1258/1252 gives clean text: read it, and say so."""
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        "don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\nSON-LONG,2022-Q1,tthc_tiep_nhan,6\n"
        "SON-LONG,2022-Q1,ghi_chu,café\n".encode("latin-1")
    )
    parsed = read_file(path)
    assert parsed.encoding == "cp1258"
    assert [r["raw"] for r in parsed.rows] == ["6", "café"]


def test_missing_header_says_which_columns(tmp_path):
    path = tmp_path / "noheader.xlsx"
    path.write_bytes(_xlsx_without_header())
    with pytest.raises(FormError, match="Mã chỉ tiêu"):
        read_file(path)


def test_pdf_is_unsupported(tmp_path):
    path = tmp_path / "report.PDF"
    path.write_bytes(b"%PDF-1.4")
    with pytest.raises(FormError, match=r"'\.pdf'"):
        read_file(path)


# ---- limits: what a file may cost to read --------------------------------------------------

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def raw_xlsx(sheet_data: str, *, sheets: int = 1, strings: list[str] | None = None) -> bytes:
    """A minimal .xlsx written by hand (what a hostile or odd tool may send): `sheet_data` is
    the inside of the first sheet's <sheetData>; the others are empty."""
    names = [FORM_SHEET] + [f"S{i}" for i in range(2, sheets + 1)]
    rels_ns = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/>'
            + "".join(
                f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                for i in range(1, sheets + 1)
            )
            + "</Types>",
        )
        zf.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rels_ns}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        zf.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{_NS}" xmlns:r="{rels_ns}"><sheets>'
            + "".join(
                f'<sheet name="{n}" sheetId="{i}" r:id="rId{i}"/>'
                for i, n in enumerate(names, start=1)
            )
            + "</sheets></workbook>",
        )
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(
                f'<Relationship Id="rId{i}" Type="{rels_ns}/worksheet" '
                f'Target="worksheets/sheet{i}.xml"/>'
                for i in range(1, sheets + 1)
            )
            + (
                f'<Relationship Id="rIdS" Type="{rels_ns}/sharedStrings" '
                'Target="sharedStrings.xml"/>'
                if strings
                else ""
            )
            + "</Relationships>",
        )
        if strings:
            zf.writestr(
                "xl/sharedStrings.xml",
                f'<sst xmlns="{_NS}">'
                + "".join(f"<si><t>{s}</t></si>" for s in strings)
                + "</sst>",
            )
        for i in range(1, sheets + 1):
            data = sheet_data if i == 1 else ""
            zf.writestr(
                f"xl/worksheets/sheet{i}.xml",
                f'<worksheet xmlns="{_NS}"><sheetData>{data}</sheetData></worksheet>',
            )
    return buf.getvalue()


def far_cell_xlsx(with_a1: bool = True) -> bytes:
    """The IT officer's 7 kB file: a cell at XFD1048576 (with A1 filled too, calamine would
    allocate 16,384 x 1,048,576 cells, 512 GiB, and abort the process)."""
    wb = Workbook()
    ws = wb.active
    ws.title = FORM_SHEET
    if with_a1:
        ws["A1"] = "Báo cáo"
    ws["XFD1048576"] = 1
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("with_a1", [False, True])
def test_far_out_cell_is_refused_before_calamine(tmp_path, with_a1):
    path = tmp_path / "far.xlsx"
    path.write_bytes(far_cell_xlsx(with_a1))
    assert path.stat().st_size < 10_000
    with pytest.raises(FormError) as exc:
        read_file(path)
    msg = str(exc.value)
    assert msg.startswith("far.xlsx: sheet BaoCao có ô ở XFD1048576, ngoài vùng biểu mẫu")
    assert "chép số liệu vào biểu mẫu gốc rồi gửi lại" in msg


def test_cells_spread_over_a_huge_area_are_refused(tmp_path):
    """Each cell within the row and column limits, but the rectangle calamine would
    allocate (26 x 150,000) is over max_cells."""
    path = tmp_path / "spread.xlsx"
    path.write_bytes(
        raw_xlsx(
            '<row r="1"><c r="A1"><v>1</v></c></row><row r="150000"><c r="Z150000"><v>2</v></c></row>'
        )
    )
    with pytest.raises(FormError, match=r"trải từ ô A1 đến Z150000 \(3\.900\.000 ô"):
        read_file(path)


def test_cells_without_r_are_placed_as_calamine_places_them(tmp_path):
    """Rows and cells without `r` follow the previous ones: the scan must not be fooled."""
    cells = "<c><v>1</v></c>" * 250  # the 201st is GS1, past max_columns=200
    path = tmp_path / "wide.xlsx"
    path.write_bytes(raw_xlsx(f"<row>{cells}</row>"))
    with pytest.raises(FormError, match=r"có ô ở GS1, ngoài vùng biểu mẫu"):
        read_file(path)


def test_empty_styled_cells_far_out_do_not_count(tmp_path):
    """Excel leaves formatted but empty cells anywhere; calamine skips them, so may we."""
    path = tmp_path / "styled.xlsx"
    path.write_bytes(
        raw_xlsx(
            '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
            '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>5</v></c></row>'
            '<row r="1048576"><c r="XFD1048576" s="1"/></row>',
            strings=["Mã chỉ tiêu", "Giá trị", "tthc_pakn"],
        )
    )
    assert read_file(path).rows == [{"indicator": "tthc_pakn", "raw": 5, "cell": "BaoCao!B2"}]


def test_too_many_sheets(tmp_path):
    path = tmp_path / "sheets.xlsx"
    path.write_bytes(raw_xlsx("", sheets=6))
    with pytest.raises(FormError, match="hơn 5 sheet"):
        read_file(path, ReadLimits(max_sheets=5))


def test_too_many_zip_entries(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in range(30):
            zf.writestr(f"junk/{n}.xml", "<a/>")
    path = tmp_path / "entries.xlsx"
    path.write_bytes(buf.getvalue())
    with pytest.raises(FormError, match="30 mục, quá giới hạn 20"):
        read_file(path, ReadLimits(max_zip_entries=20))


def _bomb(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b" " * size)
    return buf.getvalue()


def test_zip_bomb_refused_by_ratio(tmp_path):
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(_bomb(20_000_000))
    assert path.stat().st_size < 100_000
    with pytest.raises(FormError, match="zip bomb"):
        read_file(path)


def test_zip_bomb_refused_by_inflated_size(tmp_path):
    path = tmp_path / "big.xlsx"
    path.write_bytes(_bomb(3_000_000))
    with pytest.raises(FormError, match=r"giải nén quá lớn \(3\.000\.000 byte"):
        read_file(path, ReadLimits(max_uncompressed_bytes=1_000_000))


def test_zip_lying_about_its_size_is_caught(tmp_path):
    """The directory says 1,000 bytes; the stream inflates to 5 MB."""
    data = bytearray(_bomb(5_000_000))
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 1000)
    struct.pack_into("<I", data, central + 24, 1000)
    path = tmp_path / "liar.xlsx"
    path.write_bytes(bytes(data))
    with pytest.raises(FormError, match="giải nén ra nhiều hơn 1.000 byte khai báo"):
        read_file(path)


def test_corrupted_bytes_inside_a_form(tmp_path):
    data = bytearray(_form())
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename)
    for k in range(start + 20, start + 60):
        data[k] ^= 0x5A
    path = tmp_path / "flipped.xlsx"
    path.write_bytes(bytes(data))
    with pytest.raises(FormError, match="flipped.xlsx: tệp bị hỏng"):
        read_file(path)


def test_password_protected_xlsx(tmp_path):
    """Excel saves a workbook with a password as an OLE file, not a zip."""
    path = tmp_path / "locked.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000))
    with pytest.raises(FormError, match="locked.xlsx: tệp có mật khẩu"):
        read_file(path)


def test_missing_file_is_a_form_error(tmp_path):
    with pytest.raises(FormError, match="gone.xlsx: không mở được tệp"):
        read_file(tmp_path / "gone.xlsx")


def test_limits_from_settings(monkeypatch):
    monkeypatch.setenv("BAOCAO_READ_MAX_ROWS", "5000")
    monkeypatch.setenv("BAOCAO_READ_SECONDS_PER_FILE", "2.5")
    limits = ReadLimits.from_settings(get_settings())
    assert limits.max_rows == 5000 and limits.seconds_per_file == 2.5
    assert limits.max_cells == ReadLimits().max_cells
    monkeypatch.delenv("BAOCAO_READ_MAX_ROWS")
    monkeypatch.delenv("BAOCAO_READ_SECONDS_PER_FILE")
    assert ReadLimits.from_settings(get_settings()) == ReadLimits()


def ods_file(path: Path, rows_xml: str) -> Path:
    """An OpenDocument sheet: the pre-checks do not scan these, the worker's limits must."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr(
            "META-INF/manifest.xml",
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
            ' manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-'
            'type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest'
            ':full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>',
        )
        zf.writestr(
            "content.xml",
            '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:'
            '1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:'
            'oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body>'
            '<office:spreadsheet><table:table table:name="BaoCao">'
            + rows_xml
            + "</table:table></office:spreadsheet></office:body></office:document-content>",
        )
    return path


def test_ods_with_millions_of_repeated_cells_is_refused_before_calamine(tmp_path):
    bomb = ods_file(
        tmp_path / "bomb.ods",
        '<table:table-row table:number-rows-repeated="9000"><table:table-cell table:number-'
        'columns-repeated="10000" office:value-type="float" office:value="1"/></table:table-row>',
    )
    with pytest.raises(
        FormError, match="bomb.ods: sheet BaoCao có ô ở NTP9000, ngoài vùng biểu mẫu"
    ):
        read_file(bomb)
    spread = ods_file(
        tmp_path / "spread.ods",
        '<table:table-row table:number-rows-repeated="100000"><table:table-cell table:number-'
        'columns-repeated="30"><text:p>x</text:p></table:table-cell></table:table-row>',
    )
    with pytest.raises(FormError, match=r"hơn 2\.000\.000 ô có dữ liệu"):
        read_file(spread)


def test_ods_as_libreoffice_writes_it(tmp_path):
    """LibreOffice pads a sheet with repeated empty rows and cells to the sheet's end."""
    path = ods_file(
        tmp_path / "libre.ods",
        '<table:table-row><table:table-cell office:value-type="string"><text:p>Mã chỉ tiêu'
        '</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Giá '
        'trị</text:p></table:table-cell><table:table-cell table:number-columns-repeated="1022"/>'
        '</table:table-row><table:table-row><table:table-cell office:value-type="string"><text:p>'
        'tthc_pakn</text:p></table:table-cell><table:table-cell office:value-type="float" '
        'office:value="5"/><table:table-cell table:number-columns-repeated="1022"/>'
        '</table:table-row><table:table-row table:number-rows-repeated="1048574"><table:table-'
        'cell table:number-columns-repeated="1024"/></table:table-row>',
    )
    assert read_file(path).rows == [{"indicator": "tthc_pakn", "raw": 5.0, "cell": "BaoCao!B2"}]


# ---- formulas and positions ----------------------------------------------------------------


def test_formula_without_calculated_value_is_flagged(tmp_path):
    """openpyxl (and other tools) write formulas Excel never calculated: <f> with an empty
    <v>; the unit must hear that, not "not filled in"."""
    wb = load_workbook(io.BytesIO(_form(prefill={"tc_thu_nsnn": 82.5})))
    ws = wb[FORM_SHEET]
    codes = {ws[f"B{r}"].value: r for r in range(8, 8 + len(TCKH_INDICATORS))}
    row = codes["tc_chi_nsnn"]
    ws[f"E{row}"] = f"=E{row + 1}+E{row + 2}"
    buf = io.BytesIO()
    wb.save(buf)
    path = tmp_path / "formula.xlsx"
    path.write_bytes(buf.getvalue())
    parsed = read_file(path)
    got = {r["indicator"]: r for r in parsed.rows}
    assert got["tc_chi_nsnn"] == {
        "indicator": "tc_chi_nsnn",
        "raw": None,
        "cell": f"BaoCao!E{row}",
        "problem": "formula_no_value",
    }
    assert got["tc_thu_nsnn"]["raw"] == 82.5 and "problem" not in got["tc_thu_nsnn"]
    assert sum("problem" in r for r in parsed.rows) == 1
    assert parsed.meta["unit_code"] == "TCKH"


def test_calculated_formulas_are_values(tmp_path):
    """Excel's own files: a formula with its cached value is that value; a formula that
    calculated "" (t="str", empty <v>) is a real blank; only a bare <f> is flagged."""
    path = tmp_path / "excel.xlsx"
    path.write_bytes(
        raw_xlsx(
            '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
            '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><f>1+4</f><v>5</v></c></row>'
            '<row r="3"><c r="A3" t="s"><v>3</v></c><c r="B3" t="str"><f>""</f><v></v></c></row>'
            '<row r="4"><c r="A4" t="s"><v>4</v></c><c r="B4"><f>B2*2</f></c></row>'
            '<row r="5"><c r="A5" t="s"><v>5</v></c><c r="B5" s="2"/></row>',
            strings=["Mã chỉ tiêu", "Giá trị", "a", "b", "c", "d"],
        )
    )
    rows = read_file(path).rows
    assert [(r["indicator"], r["raw"], r.get("problem")) for r in rows] == [
        ("a", 5, None),
        ("b", "", None),
        ("c", None, "formula_no_value"),
        ("d", "", None),
    ]
    assert rows[2]["cell"] == "BaoCao!B4"


def test_cell_names_when_the_sheet_does_not_start_at_a1(tmp_path):
    """calamine's grid starts at the first used cell; cell names are still the sheet's."""
    wb = Workbook()
    ws = wb.active
    ws.title = FORM_SHEET
    ws["C4"], ws["D4"] = "Mã chỉ tiêu", "Giá trị"
    ws["C5"], ws["D5"] = "tthc_pakn", 3
    ws["C6"], ws["D6"] = "tthc_tiep_nhan", "=D5+1"
    buf = io.BytesIO()
    wb.save(buf)
    path = tmp_path / "moved.xlsx"
    path.write_bytes(buf.getvalue())
    rows = read_file(path).rows
    assert [(r["cell"], r.get("problem")) for r in rows] == [
        ("BaoCao!D5", None),
        ("BaoCao!D6", "formula_no_value"),
    ]


# ---- CSV encodings, the form-code column, size ------------------------------------------

_VN = "Xã Sơn Long; Ủy ban nhân dân: hội đồng, báo cáo quý"
_TONES = "\u0300\u0301\u0303\u0309\u0323"


def _cp1258(text: str) -> bytes:
    """Windows-1258 as Windows writes it: vowels with their hats precomposed, tone marks as
    combining characters after them."""
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            marks = unicodedata.normalize("NFD", ch)
            base = unicodedata.normalize("NFC", "".join(c for c in marks if c not in _TONES))
            out += (base + "".join(c for c in marks if c in _TONES)).encode("cp1258")
    return bytes(out)


def _vn_csv(sep: str = ",") -> str:
    rows = [
        ["don_vi", "ky_bao_cao", "ma_chi_tieu", "gia_tri"],
        ["SON-LONG", "2022-Q1", "tthc_tiep_nhan", "6"],
        ["SON-LONG", "2022-Q1", "ghi_chu", _VN],
    ]
    return "\r\n".join(sep.join(f'"{c}"' if sep in c else c for c in r) for r in rows) + "\r\n"


@pytest.mark.parametrize(
    "encoding, data",
    [
        ("utf-8", _vn_csv().encode("utf-8")),
        ("utf-8-sig", _vn_csv().encode("utf-8-sig")),
        ("utf-16-le", codecs.BOM_UTF16_LE + _vn_csv("\t").encode("utf-16-le")),  # Unicode Text
        ("utf-16-be", codecs.BOM_UTF16_BE + _vn_csv().encode("utf-16-be")),
        ("utf-16-le", _vn_csv().encode("utf-16-le")),  # no BOM: told by its NUL bytes
        ("utf-16-be", _vn_csv(";").encode("utf-16-be")),
        ("cp1258", _cp1258(_vn_csv())),
    ],
)
def test_csv_encodings_keep_vietnamese_text(tmp_path, encoding, data):
    path = tmp_path / "vn.csv"
    path.write_bytes(data)
    parsed = read_file(path)
    assert parsed.encoding == encoding
    assert [r["raw"] for r in parsed.rows] == ["6", _VN]
    assert parsed.rows[1]["cell"] == "D3"


def test_cp1258_bytes_are_not_utf8():
    data = _cp1258(_VN)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert unicodedata.normalize("NFC", data.decode("cp1258")) == _VN


def test_csv_form_code_column_becomes_token(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text(
        "Đơn vị;Kỳ báo cáo;Mã chỉ tiêu;Giá trị;Mã biểu mẫu\n"
        "SON-LONG;2022-Q1;tthc_pakn;0;tok-sl\n"
        "SON-MAU;2022-Q1;tthc_pakn;2;\n",
        encoding="utf-8",
    )
    rows = read_file(path).rows
    assert [(r["unit"], r["raw"], r["token"]) for r in rows] == [
        ("SON-LONG", "0", "tok-sl"),
        ("SON-MAU", "2", ""),
    ]
    other = tmp_path / "token.csv"
    other.write_text("token,unit,period,indicator,value\nabc,NV,2022-Q1,x,1\n", encoding="utf-8")
    assert read_file(other).rows[0]["token"] == "abc"


def test_province_csv_of_100000_rows(tmp_path):
    lines = ["don_vi,ky_bao_cao,ma_chi_tieu,gia_tri,ma_bieu_mau"]
    lines += [f"XA-{n // 40:05d},2022-Q1,ct_{n % 40:02d},{n},tok-{n // 40}" for n in range(100_000)]
    path = tmp_path / "province.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parsed = read_file(path)
    assert len(parsed.rows) == 100_000
    assert parsed.rows[-1] == {
        "unit": "XA-02499",
        "period": "2022-Q1",
        "indicator": "ct_39",
        "raw": "99999",
        "cell": "D100001",
        "token": "tok-2499",
    }
    with pytest.raises(FormError, match=r"province.csv: CSV có hơn 99\.999 dòng"):
        read_file(path, ReadLimits(max_rows=99_999))


def test_csv_with_too_many_columns(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(
        "don_vi,ky_bao_cao,ma_chi_tieu,gia_tri," + ",".join(f"x{i}" for i in range(300)) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(FormError, match="304 cột"):
        read_file(path)


# ---- many units: one workbook per layout, each unit stamped into it ------------------------

CREATED = dt.datetime(2022, 3, 7, 1, 0, tzinfo=dt.UTC)
DEADLINE = end_of_day(dt.date(2022, 3, 16))
# a name XML and Excel both escape: &, <, >, quotes, Excel's own _xHHHH_; then control
# characters (Excel writes them _xHHHH_, which openpyxl leaves as such)
ODD_NAME = 'Phòng "Tài chính" & <Kế hoạch> _x0041_ Sơn Tây'
CONTROL_NAME = "Xã Sơn\rBúa\x07 _x0007_"


def _unit(code: str, name: str | None = None):
    unit = CFG.unit_map[code]
    return unit.model_copy(update={"name": name}) if name else unit


def _direct(unit, token: str) -> bytes:
    return build_form(
        body=CFG.body,
        report=REPORT,
        unit=unit,
        period=PERIOD,
        indicators=CFG.indicators_of(REPORT, unit.code),
        token=token,
        deadline=DEADLINE,
        created=CREATED,
    )


def _stamper() -> FormStamper:
    return FormStamper(
        body=CFG.body, report=REPORT, period=PERIOD, deadline=DEADLINE, created=CREATED
    )


def _stamped(unit, token: str) -> bytes:
    return _stamper().form(unit, CFG.indicators_of(REPORT, unit.code), token)


def _openpyxl_view(content: bytes) -> dict:
    """What openpyxl sees in a form: every cell with its format and lock, merged ranges, sheet
    states and protection, data validations, print setup, document properties."""
    wb = load_workbook(io.BytesIO(content))
    sheets = {}
    for ws in wb.worksheets:
        sheets[ws.title] = {
            "state": ws.sheet_state,
            "protected": ws.protection.sheet,
            "cells": [
                (c.coordinate, c.value, c.number_format, c.protection.locked, c.font.b)
                for row in ws.iter_rows()
                for c in row
            ],
            "merged": sorted(str(r) for r in ws.merged_cells.ranges),
            "validations": sorted(
                (str(v.sqref), v.type, v.operator, v.formula1, v.formula2, v.error)
                for v in ws.data_validations.dataValidation
            ),
            "print": (ws.print_area, ws.print_title_rows, ws.page_setup.orientation),
        }
    p = wb.properties
    return {"sheets": sheets, "properties": (p.creator, p.title, p.subject, p.created)}


def _read_back(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    parsed = read_file(path)
    return parsed.meta, parsed.rows


@pytest.mark.parametrize(
    ("code", "name"),
    [("TCKH", None), ("SON-DUNG", None), ("SON-DUNG", ODD_NAME), ("SON-BUA", CONTROL_NAME)],
    ids=["department", "commune", "name-with-xml-characters", "control-characters"],
)
def test_a_stamped_form_is_the_form_written_for_the_unit(tmp_path, code, name):
    unit = _unit(code, name)
    direct, stamped = _direct(unit, "9f86d081884c7d65"), _stamped(unit, "9f86d081884c7d65")
    assert _read_back(tmp_path, "stamped.xlsx", stamped) == _read_back(
        tmp_path, "direct.xlsx", direct
    )
    view = _openpyxl_view(stamped)
    assert view == _openpyxl_view(direct)
    a4 = next(v for c, v, *_ in view["sheets"][FORM_SHEET]["cells"] if c == "A4")
    if name != CONTROL_NAME:
        assert a4 == f"Đơn vị báo cáo: {unit.name} (mã {code})"  # the name as it is
    assert view["sheets"][META_SHEET]["state"] == "veryHidden"
    assert view["sheets"][FORM_SHEET]["protected"] is True
    assert view["sheets"][FORM_SHEET]["validations"]  # the entry rules came along
    assert view["properties"][3] == CREATED.replace(tzinfo=None)
    assert stamped == direct  # the same bytes, even: XlsxWriter's zip layout is kept


def test_each_stamped_form_carries_its_own_unit_and_token(tmp_path):
    stamper = _stamper()
    units = CFG.expected_units(REPORT)
    tokens = {code: f"{n:016x}" for n, code in enumerate(units, start=1)}
    for code in units:
        content = stamper.form(CFG.unit_map[code], CFG.indicators_of(REPORT, code), tokens[code])
        meta, rows = _read_back(tmp_path, f"{code}.xlsx", content)
        assert (meta["unit_code"], meta["token"], meta["period"]) == (code, tokens[code], "2022-Q1")
        assert [r["indicator"] for r in rows] == [i.code for i in CFG.indicators_of(REPORT, code)]
    # the nine communes fill the same indicators: 14 units, 6 workbooks written
    assert (
        stamper.layouts
        == len({tuple(i.code for i in CFG.indicators_of(REPORT, u)) for u in units})
        == 6
    )


def test_stamping_twice_gives_the_same_bytes_and_needs_a_token():
    unit = _unit("SON-DUNG", ODD_NAME)
    assert _stamped(unit, "0123456789abcdef") == _stamped(unit, "0123456789abcdef")
    assert _stamped(unit, "0123456789abcdef") != _stamped(unit, "0123456789abcdee")
    for token in ("", "=1+1", " abc"):  # none is written as the cell's plain text
        with pytest.raises(ValueError, match="token"):
            _stamped(unit, token)


def test_a_stamped_form_returned_filled_is_identified_and_taken_in(tmp_path):
    """open_period stamps the forms; the one a unit named with & and < fills and sends back
    is taken in for it, and what was written is what build_form writes for that unit."""
    config = edited_config(
        tmp_path / "config",
        "units.yaml",
        "name: UBND xã Sơn Dung",
        "name: 'UBND xã Sơn Dung & <Mới>'",
    )
    rt = build_runtime(
        report_id=REPORT.id, settings=get_settings(data_dir=tmp_path / "data", config_dir=config)
    )
    opened = parse_moment("2022-03-07T08:00")
    open_period(rt, period=PERIOD, units=["SON-DUNG", "SON-BUA", "TCKH"], now=opened)
    token = request_tokens(rt)["SON-DUNG"]
    issued = rt.settings.forms_dir / "cchc-quarterly" / "2022-Q1" / "SON-DUNG_2022-Q1.xlsx"
    unit = rt.cfg.unit_map["SON-DUNG"]
    assert issued.read_bytes() == build_form(
        body=rt.cfg.body,
        report=rt.report,
        unit=unit,
        period=PERIOD,
        indicators=rt.cfg.indicators_of(rt.report, "SON-DUNG"),
        token=token,
        deadline=end_of_day(dt.date(2022, 3, 16)),
        created=opened,
    )
    wb = load_workbook(issued)
    ws = wb[FORM_SHEET]
    assert ws["A4"].value == "Đơn vị báo cáo: UBND xã Sơn Dung & <Mới> (mã SON-DUNG)"
    for row, value in zip(range(8, 12), (12, 11, 1, 0), strict=True):
        ws[f"E{row}"] = value
    path = tmp_path / "ban gui lai.xlsx"
    wb.save(path)
    [r] = ingest_files(rt, [path], now=parse_moment("2022-03-10T09:00"))
    assert (r.outcome, r.unit, r.period, r.version) == ("accepted", "SON-DUNG", "2022-Q1", 1)
    with session_scope(rt.engine) as s:
        row = crud.get_period(s, report_id=rt.report.id, code=PERIOD.code)
        requests = crud.requests_for(s, period_id=row.id)
    for req in requests.values():
        content = Path(req.form_path).read_bytes()
        assert req.form_sha256 == hashlib.sha256(content).hexdigest()
        assert zipfile.ZipFile(io.BytesIO(content)).namelist()[0] == "[Content_Types].xml"
