"""Rebuild examples/son-tay-2022-q1/submissions from figures.yaml and figures-tcd.yaml (run
after changing a form): `python scripts/make_example.py [cchc-quarterly] [tcd-monthly]`
(default: both).

The files are the units' filled forms as they would come back. CCHC, Quý I/2022: most are
the .xlsx form, one is renamed by its sender, one is a CSV carrying two communes, and the
Finance office's first file has a spending total that does not add up (40.898 ≠ 35.107 +
5.719), corrected in TCKH_2022-Q1_sua.xlsx. TCD, tháng 3/2022: Thanh tra huyện's and each
commune's .xlsx form (`<unit>_2022-03.xlsx`).
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import yaml

from baocao import forms
from baocao.config import Config, load_config
from baocao.periods import Period
from tasks.collect import period_dates

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "son-tay-2022-q1"
OUT = EXAMPLE / "submissions"


def form_writer(cfg: Config, report_id: str, period: Period):
    """A function (unit, figures) -> the unit's form filled with them, as it comes back."""
    report = cfg.report(report_id)
    deadline = period_dates(period, report.schedule or cfg.schedule).unit_deadline

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

    return form


def make_cchc(cfg: Config) -> None:
    """Quý I/2022 of cchc-quarterly, from figures.yaml."""
    form = form_writer(cfg, "cchc-quarterly", Period.parse("2022-Q1"))
    figures = yaml.safe_load((EXAMPLE / "figures.yaml").read_text(encoding="utf-8"))
    names = {"SON-LIEN": "xa-son-lien-quy1.xlsx"}
    in_csv = ("SON-LONG", "SON-MAU")
    for unit, values in figures.items():
        if unit in in_csv:
            continue
        name = names.get(unit, f"{unit}_2022-Q1.xlsx")
        if unit == "TCKH":
            (OUT / "TCKH_2022-Q1_sua.xlsx").write_bytes(form(unit, values))
            values = {**values, "tc_chi_xa": 5719}  # the typo the rejection catches
        (OUT / name).write_bytes(form(unit, values))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["don_vi", "ky_bao_cao", "ma_chi_tieu", "gia_tri"])
    for unit in in_csv:
        for code, value in figures[unit].items():
            writer.writerow([unit, "2022-Q1", code, value])
    (OUT / "communes_2022-Q1.csv").write_text(buf.getvalue(), encoding="utf-8")


def make_tcd(cfg: Config) -> None:
    """Tháng 3/2022 of tcd-monthly, from figures-tcd.yaml: one .xlsx form per unit."""
    form = form_writer(cfg, "tcd-monthly", Period.parse("2022-03"))
    figures = yaml.safe_load((EXAMPLE / "figures-tcd.yaml").read_text(encoding="utf-8"))
    for unit, values in figures.items():
        (OUT / f"{unit}_2022-03.xlsx").write_bytes(form(unit, values))


def main(reports: list[str]) -> None:
    cfg = load_config(ROOT / "config")
    OUT.mkdir(exist_ok=True)
    makers = {"cchc-quarterly": make_cchc, "tcd-monthly": make_tcd}
    for report_id in reports or makers:
        makers[report_id](cfg)


if __name__ == "__main__":
    main(sys.argv[1:])
