"""The collection form: written for a unit, read back; hostile files give a FormError only."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from openpyxl import Workbook, load_workbook

from baocao.config import load_config
from baocao.forms import FORM_SHEET, META_SHEET, FormError, build_form, read_file
from baocao.periods import Period, end_of_day
from baocao.settings import PROJECT_ROOT

CFG = load_config(PROJECT_ROOT / "config")
REPORT = CFG.report()
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
