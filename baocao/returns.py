"""The units' side of a cycle, for the demo, the tests and the benchmarks: a unit returns the
form it received, so its returned file carries the form code of its request.

`as_returned` takes one of the bundled example files (filled forms without a code, a CSV of
several communes) and gives it the code of the unit's request, as the unit's own copy had.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from openpyxl import load_workbook

from baocao.forms import META_SHEET


def stamp_token(content: bytes, token: str) -> bytes:
    """An .xlsx form with `token` written into its hidden `_baocao` sheet."""
    wb = load_workbook(io.BytesIO(content))
    ws = wb[META_SHEET]
    for row in ws.iter_rows(min_col=1, max_col=2):
        if row[0].value == "token":
            row[1].value = token
            break
    else:
        ws.append(["token", token])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def stamp_csv(text: str, tokens: dict[str, str]) -> str:
    """A long-form CSV with a `ma_bieu_mau` column: each row carries its unit's form code."""
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip().lower() for h in rows[0]]
    unit_col = header.index("don_vi") if "don_vi" in header else header.index("unit")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*rows[0], "ma_bieu_mau"])
    for row in rows[1:]:
        if row:
            writer.writerow([*row, tokens.get(row[unit_col].strip(), "")])
    return out.getvalue()


def as_returned(source: Path, target: Path, tokens: dict[str, str], unit: str | None) -> Path:
    """Write `source` to `target` as its unit sends it back: with the unit's form code
    (`tokens`: unit code -> token of its request; `unit`: the .xlsx form's unit)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix.lower() == ".csv":
        target.write_text(stamp_csv(source.read_text(encoding="utf-8"), tokens), encoding="utf-8")
    else:
        target.write_bytes(stamp_token(source.read_bytes(), tokens[unit]))
    return target


def example_unit(path: Path) -> str | None:
    """The unit of a bundled example form (its hidden sheet names it), None for a CSV."""
    if path.suffix.lower() == ".csv":
        return None
    wb = load_workbook(path, read_only=True)
    try:
        for row in wb[META_SHEET].iter_rows(values_only=True):
            if row and row[0] == "unit_code":
                return str(row[1])
    finally:
        wb.close()
    return None
