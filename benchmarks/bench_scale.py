"""How the spine scales: a district config grown to N communes, their forms written, their
returns taken in (as .xlsx files and as one CSV), consolidated and rendered. Prints figures;
asserts nothing about speed (that is not a unit test's job).

    .venv/bin/python benchmarks/bench_scale.py --units 2000 --xlsx 300
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from baocao import crud, forms
from baocao.db import session_scope
from baocao.periods import Period, parse_moment
from baocao.returns import as_returned, example_unit
from baocao.runtime import build_runtime
from baocao.settings import PROJECT_ROOT, get_settings
from tasks.collect import open_period
from tasks.consolidate import consolidate_period
from tasks.intake import ingest_files
from tasks.render import build_document, write_report

FIGURES = {"tthc_tiep_nhan": 7, "tthc_da_giai_quyet": 6, "tthc_dang_giai_quyet": 1, "tthc_pakn": 0}


class Clock:
    def __init__(self):
        self.rows: list[tuple[str, float, str]] = []

    def __call__(self, label: str, n: int | None = None):
        clock = self

        class _Span:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                secs = time.perf_counter() - self.t
                rate = f"{n / secs:,.0f}/s" if n else ""
                clock.rows.append((label, secs, rate))
                print(f"{label:<52} {secs:8.2f} s  {rate}", flush=True)

        return _Span()


def grow_config(root: Path, units: int) -> Path:
    config = root / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    path = config / "units.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["units"] += [
        {
            "code": f"XA-{n:05d}",
            "name": f"UBND xã số {n}",
            "kind": "commune",
            "groups": ["communes"],
            "contacts": [{"email": f"xa{n:05d}@example.gov.vn"}],
        }
        for n in range(units)
    ]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=2000, help="extra communes")
    ap.add_argument(
        "--xlsx", type=int, default=300, help="of which return an .xlsx (the rest: one CSV)"
    )
    args = ap.parse_args()
    clock = Clock()
    root = Path(tempfile.mkdtemp(prefix="baocao-bench-"))
    config = grow_config(root, args.units)
    rt = build_runtime(
        report_id="cchc-quarterly",
        settings=get_settings(data_dir=root / "data", config_dir=config),
    )
    period = Period.parse("2022-Q1")
    print(f"{len(rt.cfg.units):,} units, data in {root}")

    with clock(f"open period: {len(rt.cfg.units):,} forms + requests", len(rt.cfg.units)):
        open_period(rt, period=period, units=None, now=parse_moment("2022-03-07T08:00"))

    communes = [u.code for u in rt.cfg.units if u.code.startswith("XA-")]
    with session_scope(rt.engine) as s:  # each unit returns the form of its own request
        period_id = crud.get_period(s, report_id=rt.report.id, code=period.code).id
        tokens = {u: r.token for u, r in crud.requests_for(s, period_id=period_id).items()}
    inbox = root / "inbox"
    inbox.mkdir()
    deadline = dt.datetime(2022, 3, 17, tzinfo=dt.UTC)
    with clock(f"write {args.xlsx} filled .xlsx returns", args.xlsx):
        for code in communes[: args.xlsx]:
            content = forms.build_form(
                body=rt.cfg.body,
                report=rt.report,
                unit=rt.cfg.unit_map[code],
                period=period,
                indicators=rt.cfg.indicators_of(rt.report, code),
                token=tokens[code],
                deadline=deadline,
                prefill=FIGURES,
            )
            (inbox / f"{code}_2022-Q1.xlsx").write_bytes(content)
    big = inbox / "communes.csv"
    with big.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["don_vi", "ky_bao_cao", "ma_chi_tieu", "gia_tri", "ma_bieu_mau"])
        for code in communes[args.xlsx :]:
            for k, v in FIGURES.items():
                w.writerow([code, "2022-Q1", k, v, tokens[code]])

    xlsx = sorted(inbox.glob("*.xlsx"))
    with clock(f"ingest {len(xlsx)} .xlsx (archive, calamine, validate, store)", len(xlsx)):
        ingest_files(rt, xlsx, now=parse_moment("2022-03-14T10:00"))
    n_csv = len(communes) - args.xlsx
    with clock(f"ingest one CSV carrying {n_csv:,} units", n_csv):
        ingest_files(rt, [big], now=parse_moment("2022-03-14T11:00"))
    example = PROJECT_ROOT / "examples" / "son-tay-2022-q1" / "submissions"
    departments = [
        as_returned(f, root / "returned" / f.name, tokens, example_unit(f))
        for f in sorted(example.glob("*"))
    ]
    ingest_files(rt, departments, now=parse_moment("2022-03-16T10:00"))
    with clock("consolidate the period (pandas)"):
        result = consolidate_period(rt, period)
    print(
        f"   units in {result.completeness}; dossiers received {result.values['tthc_tiep_nhan']:,.0f}"
    )
    with clock("render md + html + docx + appendices"):
        doc = (
            build_document(rt.env, result, rt.report, rt.cfg.body, dt.date(2022, 4, 5))
            if not result.missing
            else None
        )
        if doc:
            write_report(rt.env, doc, result, rt.report, root / "out", rt.cfg.body)
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
