"""Rebuild examples/son-tay-2022-q1/submissions from figures.yaml (run after changing the form).

The files are the units' filled forms as they would come back: most are the .xlsx form,
one is renamed by its sender, one is a CSV carrying two communes, and the Finance office's
first file has a spending total that does not add up (40.898 ≠ 35.107 + 5.719), corrected
in TCKH_2022-Q1_sua.xlsx.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import yaml

from baocao import forms
from baocao.config import load_config
from baocao.periods import Period, end_of_day

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "son-tay-2022-q1"


def main() -> None:
    cfg = load_config(ROOT / "config")
    report = cfg.report()
    period = Period.parse("2022-Q1")
    figures = yaml.safe_load((EXAMPLE / "figures.yaml").read_text(encoding="utf-8"))
    out = EXAMPLE / "submissions"
    out.mkdir(exist_ok=True)
    deadline = end_of_day(dt.date(2022, 3, 16))

    def form(unit: str, values: dict) -> bytes:
        return forms.build_form(
            body=cfg.body,
            report=report,
            unit=cfg.unit_map[unit],
            period=period,
            indicators=cfg.indicators_of(report, unit),
            token="",
            deadline=deadline,
            prefill=values,
        )

    names = {"SON-LIEN": "xa-son-lien-quy1.xlsx"}
    in_csv = ("SON-LONG", "SON-MAU")
    for unit, values in figures.items():
        if unit in in_csv:
            continue
        name = names.get(unit, f"{unit}_2022-Q1.xlsx")
        if unit == "TCKH":
            (out / "TCKH_2022-Q1_sua.xlsx").write_bytes(form(unit, values))
            values = {**values, "tc_chi_xa": 5719}  # the typo the rejection catches
        (out / name).write_bytes(form(unit, values))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["don_vi", "ky_bao_cao", "ma_chi_tieu", "gia_tri"])
    for unit in in_csv:
        for code, value in figures[unit].items():
            writer.writerow([unit, "2022-Q1", code, value])
    (out / "communes_2022-Q1.csv").write_text(buf.getvalue(), encoding="utf-8")


if __name__ == "__main__":
    main()
