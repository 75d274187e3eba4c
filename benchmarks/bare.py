"""The bare script: the cycle's essential work with pandas, XlsxWriter, python-calamine,
smtplib and python-docx, and no baocao (no store, no archive, no notices, no templates).

It is what the benchmark compares each stage with (benchmarks/bench_scale.py runs both in the
same run, on the same returned files): write a form per unit (the same columns), mail each
its form over one SMTP connection, read the returns (.xlsx and CSV) and check them (required
figures present, counts not negative, the sum rules; the same content again is a duplicate;
the latest valid version of a unit counts), sum, and write a report (.docx) and an appendix
(.xlsx). Its input is a plain spec (units, indicators, rules) the benchmark writes as JSON.
"""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

import pandas as pd
import xlsxwriter
from docx import Document
from python_calamine import CalamineWorkbook

HEADER = ("STT", "Mã chỉ tiêu", "Chỉ tiêu", "Đơn vị tính", "Giá trị", "Ghi chú")
NUMERIC = {"integer", "decimal", "percent"}


def write_forms(spec: dict, folder: Path) -> dict[str, Path]:
    """One .xlsx form per unit: a title, the indicator table (value column empty), a meta sheet."""
    folder.mkdir(parents=True, exist_ok=True)
    inds = spec["indicators"]
    paths = {}
    for unit in spec["units"]:
        path = folder / f"{unit['code']}_{spec['period']}.xlsx"
        wb = xlsxwriter.Workbook(str(path), {"in_memory": True})
        ws = wb.add_worksheet("BaoCao")
        ws.write(0, 0, f"Đơn vị báo cáo: {unit['name']} (mã {unit['code']})")
        ws.write_row(2, 0, HEADER)
        for n, code in enumerate(unit["indicators"], start=1):
            ind = inds[code]
            ws.write_row(2 + n, 0, (n, code, ind["label"], ind.get("unit") or ""))
        meta = wb.add_worksheet("_baocao")
        meta.write_row(0, 0, ("unit_code", unit["code"]))
        meta.write_row(1, 0, ("period", spec["period"]))
        wb.close()
        paths[unit["code"]] = path
    return paths


def mail_forms(spec: dict, forms: dict[str, Path], port: int) -> int:
    """Each unit its form, attached, over one SMTP connection."""
    sender = "vanthu@example.gov.vn"
    with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost") as smtp:
        for unit in spec["units"]:
            msg = EmailMessage()
            msg["From"], msg["To"] = sender, unit["email"]
            msg["Subject"] = f"Đề nghị báo cáo {spec['period']}"
            msg.set_content(f"Kính gửi: {unit['name']}\n\nĐề nghị gửi báo cáo kèm biểu mẫu.\n")
            path = forms[unit["code"]]
            msg.add_attachment(
                path.read_bytes(),
                maintype="application",
                subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                filename=path.name,
            )
            smtp.send_message(msg)
    return len(spec["units"])


def read_xlsx(path: Path) -> list[tuple[str, str, object]]:
    """(unit, indicator, value) rows of a returned form: the unit from its meta sheet."""
    wb = CalamineWorkbook.from_path(str(path))
    meta = dict(row[:2] for row in wb.get_sheet_by_name("_baocao").to_python() if len(row) > 1)
    grid = wb.get_sheet_by_name("BaoCao").to_python()
    top = next(i for i, row in enumerate(grid) if len(row) > 1 and row[1] == HEADER[1])
    unit = str(meta["unit_code"])
    return [(unit, row[1], row[4]) for row in grid[top + 1 :] if len(row) > 4 and row[1]]


def read_returns(waves: list[tuple[str, list[Path]]]) -> tuple[pd.DataFrame, int]:
    """Every figure received, long: submission (file number, and unit in a CSV; sorts in
    arrival order), arrival time, unit, indicator, value; and how many files were unreadable."""
    rows, unreadable, n = [], 0, 0
    for at, paths in waves:
        for path in paths:
            n += 1
            try:
                if path.suffix.lower() == ".csv":
                    df = pd.read_csv(path, dtype={"gia_tri": object})
                    got = zip(df["don_vi"], df["ma_chi_tieu"], df["gia_tri"], strict=True)
                    # each unit of a CSV is its own submission
                    rows += [(f"{n:06d}:{u}", at, u, c, v) for u, c, v in got]
                else:
                    rows += [(f"{n:06d}", at, u, c, v) for u, c, v in read_xlsx(path)]
            except Exception:  # noqa: BLE001 - a file we cannot read is counted, not fatal
                unreadable += 1
    frame = pd.DataFrame(rows, columns=["sub", "at", "unit", "indicator", "value"])
    return frame, unreadable


def check(long: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """One row per submission (unit x indicators), with `valid` and `duplicate` set."""
    inds = spec["indicators"]
    wide = (
        long.drop_duplicates(["sub", "indicator"])
        .pivot(index=["sub", "at", "unit"], columns="indicator", values="value")
        .reset_index()
    )
    wide.columns.name = None
    numeric = [c for c in wide.columns if inds.get(c, {}).get("type") in NUMERIC]
    for c in numeric:
        wide[c] = pd.to_numeric(wide[c], errors="coerce")
    expected = {u["code"]: u["indicators"] for u in spec["units"]}
    valid = wide["unit"].isin(expected.keys())
    for c in numeric:
        valid &= wide[c].isna() | (wide[c] >= 0)
    for rule in spec["sum_rules"]:
        cols = [rule["total"], *rule["parts"]]
        if all(c in wide.columns for c in cols):
            both = wide[cols].notna().all(axis=1)
            diff = (wide[rule["total"]] - wide[rule["parts"]].sum(axis=1)).abs()
            valid &= ~both | (diff < 0.5)
    required = {c for c, ind in inds.items() if ind["required"]}
    missing = [
        any(code in required and pd.isna(row.get(code)) for code in expected.get(row["unit"], []))
        for row in wide.to_dict("records")
    ]
    wide["valid"] = valid & ~pd.Series(missing, index=wide.index)
    content = [c for c in wide.columns if c in inds]
    wide["duplicate"] = wide.duplicated(subset=["unit", *content], keep="first")
    return wide


def consolidate(checked: pd.DataFrame, spec: dict) -> tuple[pd.Series, pd.DataFrame, list[str]]:
    """Totals per indicator over the latest valid version of each unit; the units missing."""
    latest = (
        checked[checked["valid"] & ~checked["duplicate"]]
        .sort_values("at", kind="stable")
        .drop_duplicates("unit", keep="last")
        .set_index("unit")
    )
    inds = spec["indicators"]
    numeric = [c for c in latest.columns if inds.get(c, {}).get("type") in NUMERIC]
    totals = latest[numeric].sum()
    missing = sorted({u["code"] for u in spec["units"]} - set(latest.index))
    return totals, latest, missing


def render(spec: dict, totals: pd.Series, by_unit: pd.DataFrame, out: Path) -> list[Path]:
    """A .docx with a sentence per figure and an appendix .xlsx of every unit's figures."""
    out.mkdir(parents=True, exist_ok=True)
    doc = Document()
    doc.add_heading(f"Báo cáo {spec['period']}", level=1)
    for code, value in totals.items():
        doc.add_paragraph(f"- {spec['indicators'][code]['label']}: {value:,.0f}".replace(",", "."))
    report = out / "bao-cao.docx"
    doc.save(report)
    appendix = out / "phu-luc.xlsx"
    with pd.ExcelWriter(appendix, engine="xlsxwriter") as xw:
        by_unit.drop(columns=["sub", "valid", "duplicate"]).to_excel(xw, sheet_name="PL02")
    return [report, appendix]


def run(spec: dict, waves: list[tuple[str, list[Path]]], port: int, work: Path) -> dict:
    """The whole bare cycle, timed per stage like ours: {stage: seconds, ...} and counts."""
    times: dict[str, float] = {}

    def timed(stage, fn, *args):
        t = time.perf_counter()
        result = fn(*args)
        times[stage] = time.perf_counter() - t
        return result

    forms = timed("open", write_forms, spec, work / "forms")
    timed("mail", mail_forms, spec, forms, port)

    def ingest():
        long, unreadable = read_returns(waves)
        return check(long, spec), unreadable

    checked, unreadable = timed("ingest", ingest)
    totals, by_unit, missing = timed("consolidate", consolidate, checked, spec)
    timed("render", render, spec, totals, by_unit, work / "out")
    late = pd.to_datetime(checked["at"].astype(str)) > pd.Timestamp(spec["deadline"])
    counts = {
        "submissions": len(checked),
        "rejected": int((~checked["valid"]).sum()),
        "duplicate": int(checked["duplicate"].sum()),
        "late": int((late & checked["valid"]).sum()),
        "unreadable": unreadable,
        "missing": len(missing),
    }
    return {"seconds": times, "counts": counts}
