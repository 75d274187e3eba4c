"""Returned files as units make them: the form each unit received with `baocao open`, filled in
with openpyxl (column E by the indicator code in column B of sheet `BaoCao`), or a CSV in
long form carrying the unit's form code in `ma_bieu_mau`. Values come from the example's
figures.yaml; variants change them a little so each file is a distinct submission."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from openpyxl import load_workbook

from reliability.harness import FIGURES, PERIOD, UNITS

SHEET = "BaoCao"
CODE_COL, VALUE_COL = 2, 5  # B, E


class FormFiller:
    """A unit's received form, loaded once, saved as many filled copies as asked."""

    def __init__(self, form_path: Path | str):
        self.wb = load_workbook(form_path)
        self.ws = self.wb[SHEET]
        self.rows: dict[str, int] = {}
        header = None
        for r in range(1, self.ws.max_row + 1):
            code = self.ws.cell(r, CODE_COL).value
            if header is None:
                header = r if code == "Mã chỉ tiêu" else None
            elif isinstance(code, str) and code.strip():
                self.rows[code.strip()] = r
        if not self.rows:
            raise ValueError(f"{form_path}: no indicator rows under 'Mã chỉ tiêu'")

    def fill(self, values: dict[str, object], extra_rows: list[tuple[str, object]] = ()) -> bytes:
        for code, row in self.rows.items():
            value = values.get(code)
            if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                value = dt.datetime.combine(value, dt.time())
            cell = self.ws.cell(row, VALUE_COL)
            if "%" in (cell.number_format or "") and isinstance(value, int | float):
                value = value / 100  # typing 85 into a percent cell, Excel stores 0.85
            cell.value = value
        added = []
        for code, value in extra_rows:  # e.g. the same indicator a second time
            r = self.ws.max_row + 1
            self.ws.cell(r, 1).value = r
            self.ws.cell(r, CODE_COL).value = code
            self.ws.cell(r, VALUE_COL).value = value
            added.append(r)
        buf = io.BytesIO()
        self.wb.save(buf)
        for r in added:
            self.ws.delete_rows(r)
        return buf.getvalue()


def fillers(tokens: dict[str, dict]) -> dict[str, FormFiller]:
    return {u: FormFiller(tokens[u]["form_path"]) for u in UNITS}


def variant(unit: str, k: int, invalid: bool = False) -> dict[str, object]:
    """The unit's example figures changed a little (k = 1, 2, ...): a distinct submission,
    valid unless `invalid` (then it breaks one of the report's rules)."""
    v = dict(FIGURES[unit])
    if unit == "NV":
        v["nv_tuyen_dung"] = f"{v['nv_tuyen_dung']} (bổ sung lần {k})"
        if invalid:
            v["nv_nv_hoan_thanh"] = v["nv_nv_ke_hoach"] + 5
    elif unit == "TP":
        v["tp_nguon"] = f"{v['tp_nguon']} - bản {k}"
        v["tp_vb_ra_soat"] = 5 + k
        if invalid:
            v["tp_vb_ban_hanh"] = -3
    elif unit == "TCKH":
        v["tc_thu_nsnn"] = v["tc_thu_nsnn"] + k
        if invalid:
            v["tc_thu_dia_ban"] = v["tc_thu_nsnn"] + 1000
    elif unit == "VHTT":
        v["vhtt_vb_dien_tu_pct"] = 40 + (k % 60)
        v["vhtt_chu_ky_so_pct"] = 100 - (k // 60)
        if invalid:
            v["vhtt_chu_ky_so_pct"] = -5
    else:  # the one-stop desk and the communes: dossiers received = settled + in progress
        v["tthc_tiep_nhan"] += k
        v["tthc_da_giai_quyet"] += k
        if invalid:
            v["tthc_da_giai_quyet"] += 3
    return v


def many_returns(
    tokens: dict[str, dict], count: int, invalid_every: int = 7, prefix: str = ""
) -> dict[str, bytes]:
    """`count` distinct returned forms spread over the 14 units (name -> bytes); every
    `invalid_every`-th breaks a rule, so the unit gets a rejection for that version."""
    fill = fillers(tokens)
    out: dict[str, bytes] = {}
    for i in range(count):
        unit = UNITS[i % len(UNITS)]
        k = i // len(UNITS) + 1
        invalid = invalid_every > 0 and (i + 1) % invalid_every == 0
        name = f"{prefix}{unit}_{PERIOD}_lan{k:03d}.xlsx"
        out[name] = fill[unit].fill(variant(unit, k, invalid))
    return out


def long_csv(
    rows: list[tuple[str, str, str, object]],
    tokens: dict[str, str] | None,
    encoding: str = "utf-8",
) -> bytes:
    """A CSV in long form (don_vi, ky_bao_cao, ma_chi_tieu, gia_tri[, ma_bieu_mau])."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    header = ["don_vi", "ky_bao_cao", "ma_chi_tieu", "gia_tri"]
    if tokens is not None:
        header.append("ma_bieu_mau")
    w.writerow(header)
    for unit, period, code, value in rows:
        if isinstance(value, dt.date):
            value = value.strftime("%d/%m/%Y")
        row = [unit, period, code, value]
        if tokens is not None:
            row.append(tokens.get(unit, ""))
        w.writerow(row)
    text = buf.getvalue()
    if encoding == "cp1258":
        return encode_cp1258(text)
    return text.encode(encoding)


def unit_rows(unit: str, values: dict | None = None, period: str = PERIOD) -> list[tuple]:
    return [(unit, period, code, value) for code, value in (values or FIGURES[unit]).items()]


def encode_cp1258(text: str) -> bytes:
    """Vietnamese text as Windows-1258 writes it: letters with a tone are a base letter
    (â, ơ, ư, ...) followed by a combining tone mark."""
    import unicodedata

    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        parts = unicodedata.normalize("NFD", ch)
        base, marks = parts[0], list(parts[1:])
        for m in marks:  # â, ê, ô, ơ, ư, ă are letters of their own in Windows-1258
            joined = unicodedata.normalize("NFC", base + m)
            if len(joined) == 1 and _encodable(joined):
                base = joined
                marks.remove(m)
                break
        out += (base + "".join(marks)).encode("cp1258")
        continue
    return bytes(out)


def _encodable(ch: str) -> bool:
    try:
        ch.encode("cp1258")
        return True
    except UnicodeEncodeError:
        return False
