"""How the cycle scales, against a bare script doing the same essential work in the same run.

For each N (`--sizes`, default 10,100,1000,10000) the district's config grows by N communes
(N + 14 units), and on each store (`--db sqlite,postgresql`) the plain stage functions run in
a fresh process and a fresh data folder, timed one by one (no Prefect flow runs: what the
flows add per run is `make bench-demo`'s business):

    open         open_period: a form per unit written, the requests stored and queued
    mail         deliver_outbox: the requests sent to a local SMTP sink the benchmark starts
    ingest       ingest_files, in three waves: ~15 % of the communes return an .xlsx, the
                 rest one CSV; some returns break a sum rule (rejected) and are sent again
                 corrected (a new version), some are re-sent unchanged (duplicates), one file
                 is not a workbook (unreadable), some arrive after the deadline (late); the
                 14 bundled units send the example's files in the example's waves
    consolidate  consolidate_period
    render       build_document + write_report (.md, .html, .docx, appendices)

The bare script (benchmarks/bare.py: pandas, XlsxWriter, python-calamine, smtplib,
python-docx) then does the same per N on the same returned files, and each stage is printed
as ours / bare. "cycle" is open + ingest + consolidate + render (mailing is paced by the mail
server). Peak RSS is each process's own. Prints a table, writes JSON and a PNG (log-log, time
against units per stage) to benchmarks/results/. Asserts nothing about speed.

    .venv/bin/python benchmarks/bench_scale.py --sizes 10,100 --db sqlite
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import math
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

STAGES = ("open", "mail", "ingest", "consolidate", "render")
CYCLE = ("open", "ingest", "consolidate", "render")
FIGURES = {"tthc_tiep_nhan": 7, "tthc_da_giai_quyet": 6, "tthc_dang_giai_quyet": 1, "tthc_pakn": 0}
BROKEN = {**FIGURES, "tthc_tiep_nhan": 9}  # 9 ≠ 6 + 1: the sum rule rejects it
PERIOD = "2022-Q1"
OPEN_AT = "2022-03-07T08:00"
WAVES = ("2022-03-14T17:00", "2022-03-16T10:00", "2022-03-17T15:00")  # on time, re-sent, late
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
MAIL_FROM = "from=vanthu@sontay.gov.vn&mode=insecure&name=UBND"


# ---- the district grown to N communes -------------------------------------------------------


def grow_config(root: Path, n: int) -> Path:
    """The bundled config with N communes added (XA-00000...), in root/config."""
    from baocao.settings import PROJECT_ROOT

    config = root / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    path = config / "units.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["units"] += [
        {
            "code": f"XA-{i:05d}",
            "name": f"UBND xã số {i}",
            "kind": "commune",
            "groups": ["communes"],
            "contacts": [{"email": f"xa{i:05d}@example.gov.vn"}],
        }
        for i in range(n)
    ]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return config


def spec_of(rt, deadline: dt.datetime) -> dict:
    """What the bare script is given: units, their indicators, the sum rules, as plain data."""
    report = rt.report
    expected = set(rt.cfg.expected_units(report))
    return {
        "period": PERIOD,
        "deadline": deadline.astimezone(VN).replace(tzinfo=None).isoformat(),  # as WAVES
        "units": [
            {
                "code": u.code,
                "name": u.name,
                "email": f"{u.code.lower()}@example.gov.vn",
                "indicators": [i.code for i in rt.cfg.indicators_of(report, u.code)],
            }
            for u in rt.cfg.units
            if u.code in expected
        ],
        "indicators": {
            i.code: {"label": i.label, "unit": i.unit, "type": i.type, "required": i.required}
            for i in report.indicators
        },
        "sum_rules": [{"total": r.total, "parts": list(r.parts)} for r in report.sum_rules],
    }


# ---- the returns: valid, invalid, re-sent, late ---------------------------------------------


def plan_returns(communes: list[str]) -> dict[str, list[str]]:
    """Which communes send what: .xlsx or CSV; broken then corrected; re-sent; late."""
    n = len(communes)
    nx = max(1, math.ceil(0.15 * n))
    xlsx, csv_units = communes[:nx], communes[nx:]
    late = csv_units[-max(1, n // 50) :]
    on_time_csv = csv_units[: len(csv_units) - len(late)]
    bad_x = xlsx[: n // 200]
    return {
        "xlsx": xlsx,
        "csv": on_time_csv,
        "late": late,
        "broken_xlsx": bad_x,
        "broken_csv": on_time_csv[: max(1, n // 200)],
        "resent": xlsx[len(bad_x) :][-max(1, n // 100) :],
    }


def write_csv(path: Path, units: list[str], tokens: dict, broken: set[str] = frozenset()) -> Path:
    """A long CSV of the units' figures, each row with its unit's form code."""
    lines = ["don_vi,ky_bao_cao,ma_chi_tieu,gia_tri,ma_bieu_mau"]
    for code in units:
        figures = BROKEN if code in broken else FIGURES
        lines += [f"{code},{PERIOD},{k},{v},{tokens[code]}" for k, v in figures.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_returns(rt, root: Path, communes: list[str]) -> list[tuple[str, list[Path]]]:
    """The returned files in three waves (on time, re-sent, late): [(moment, paths)]."""
    from baocao import crud, forms
    from baocao.db import session_scope
    from baocao.periods import Period
    from baocao.returns import as_returned, example_unit
    from baocao.settings import PROJECT_ROOT
    from tasks.collect import period_dates

    period = Period.parse(PERIOD)
    with session_scope(rt.engine) as s:
        period_id = crud.get_period(s, report_id=rt.report.id, code=PERIOD).id
        tokens = {u: r.token for u, r in crud.requests_for(s, period_id=period_id).items()}
    deadline = period_dates(period, rt.schedule).unit_deadline
    inbox = root / "inbox"
    inbox.mkdir()
    plan = plan_returns(communes)
    waves: list[list[Path]] = [[], [], []]

    def xlsx(code: str, figures: dict, name: str) -> Path:
        content = forms.build_form(
            body=rt.cfg.body,
            report=rt.report,
            unit=rt.cfg.unit_map[code],
            period=period,
            indicators=rt.cfg.indicators_of(rt.report, code),
            token=tokens[code],
            deadline=deadline,
            prefill=figures,
        )
        (inbox / name).write_bytes(content)
        return inbox / name

    broken_x = set(plan["broken_xlsx"])
    for code in plan["xlsx"]:
        waves[0].append(
            xlsx(code, BROKEN if code in broken_x else FIGURES, f"{code}_{PERIOD}.xlsx")
        )
    for code in plan["broken_xlsx"]:  # corrected: a new version
        waves[1].append(xlsx(code, FIGURES, f"{code}_{PERIOD}_sua.xlsx"))
    for code in plan["resent"]:  # the same file again: a duplicate
        again = inbox / f"{code}_{PERIOD}_gui-lai.xlsx"
        shutil.copyfile(inbox / f"{code}_{PERIOD}.xlsx", again)
        waves[1].append(again)
    (inbox / "XA-hong.xlsx").write_bytes(b"PK\x03\x04 not a workbook" * 50)  # unreadable
    waves[0].append(inbox / "XA-hong.xlsx")
    waves[0].append(write_csv(inbox / "communes.csv", plan["csv"], tokens, set(plan["broken_csv"])))
    waves[1].append(write_csv(inbox / "communes_sua.csv", plan["broken_csv"], tokens))
    waves[2].append(write_csv(inbox / "communes_muon.csv", plan["late"], tokens))

    example = PROJECT_ROOT / "examples" / "son-tay-2022-q1"
    manifest = yaml.safe_load((example / "manifest.yaml").read_text(encoding="utf-8"))
    for arrival in manifest["arrivals"]:
        wave = next(i for i, at in enumerate(WAVES) if str(arrival["at"]) <= at)
        for name in arrival["files"]:
            source = example / "submissions" / name
            target = root / "returned" / name
            waves[wave].append(as_returned(source, target, tokens, example_unit(source)))
    return list(zip(WAVES, waves, strict=True))


# ---- one case in its own process --------------------------------------------------------------


def _rss_mb() -> float:
    """This process's peak resident set so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(n: int, root: str, database_url: str | None, port: int) -> dict:
    """Our stages at N communes, timed one by one; the returns and the spec left in root."""
    from baocao.periods import Period, parse_moment
    from baocao.runtime import build_runtime
    from baocao.settings import get_settings
    from tasks.collect import open_period, period_dates
    from tasks.consolidate import consolidate_period
    from tasks.intake import ingest_files
    from tasks.notify import deliver_outbox
    from tasks.render import build_document, write_report

    root = Path(root)
    config = grow_config(root, n)
    settings = get_settings(data_dir=root / "data", config_dir=config, database_url=database_url)
    rt = build_runtime(report_id="cchc-quarterly", settings=settings)  # two reports bundled
    period = Period.parse(PERIOD)
    times: dict[str, float] = {}
    t = time.perf_counter()
    opened = open_period(rt, period=period, units=None, now=parse_moment(OPEN_AT))
    times["open"] = time.perf_counter() - t

    t = time.perf_counter()
    url = f"mailto://127.0.0.1:{port}?{MAIL_FROM}"
    sent = deliver_outbox(
        rt.engine, settings=settings, mail_url=url, kinds=["request"], period_code=PERIOD
    )
    times["mail"] = time.perf_counter() - t

    communes = [u.code for u in rt.cfg.units if u.code.startswith("XA-")]
    waves = make_returns(rt, root, communes)
    deadline = period_dates(period, rt.schedule).unit_deadline
    results = []
    t = time.perf_counter()
    for at, paths in waves:
        results += ingest_files(rt, paths, now=parse_moment(at))
    times["ingest"] = time.perf_counter() - t

    t = time.perf_counter()
    result = consolidate_period(rt, period)
    times["consolidate"] = time.perf_counter() - t

    t = time.perf_counter()
    rendered = not result.missing
    if rendered:
        doc = build_document(rt.env, result, rt.report, rt.cfg.body, dt.date(2022, 4, 5))
        write_report(rt.env, doc, result, rt.report, root / "out", rt.cfg.body)
    times["render"] = time.perf_counter() - t

    (root / "spec.json").write_text(json.dumps(spec_of(rt, deadline)), encoding="utf-8")
    rt.engine.dispose()
    outcomes = Counter(str(r.outcome) for r in results)
    return {
        "units": len(rt.cfg.expected_units(rt.report)),
        "seconds": times,
        "rss_mb": round(_rss_mb(), 1),
        "counts": {
            "forms": opened["new_requests"],
            "queued": opened["queued_messages"],
            "sent": sent["sent"],
            "files": len(results),
            **dict(outcomes),
            "late": sum(1 for r in results if r.late),
            "missing": len(result.missing),
            "rendered": rendered,
        },
        "waves": [(at, [str(p) for p in paths]) for at, paths in waves],
    }


def run_bare(root: str, waves: list, port: int) -> dict:
    """The bare script on the same returns and spec."""
    from benchmarks import bare

    root = Path(root)
    spec = json.loads((root / "spec.json").read_text(encoding="utf-8"))
    got = bare.run(spec, [(at, [Path(p) for p in ps]) for at, ps in waves], port, root / "bare")
    return {"units": len(spec["units"]), **got, "rss_mb": round(_rss_mb(), 1)}


def in_fresh_process(fn, *args) -> dict:
    """fn(*args) in a new interpreter: its own peak RSS, no cache shared between cases."""
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


# ---- PostgreSQL: a schema of its own, dropped afterwards --------------------------------------


class PgSchema:
    """A fresh schema in the database `test` for one case; the URL reaches it; dropped on exit."""

    def __enter__(self) -> str:
        import psycopg

        self.name = f"baocao_bench_{uuid.uuid4().hex[:8]}"
        self.admin = psycopg.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True
        )
        self.admin.execute(f'CREATE SCHEMA "{self.name}"')
        return f"{PG}?options=-csearch_path%3D{self.name}"

    def __exit__(self, *exc) -> None:
        self.admin.execute(f'DROP SCHEMA "{self.name}" CASCADE')
        self.admin.close()


# ---- the run -----------------------------------------------------------------------------------


def run_case(n: int, db: str, root: Path, port: int) -> dict:
    """Our stages at N on one store (in a fresh process), with the load around it."""
    load = os.getloadavg()[0]
    if db == "postgresql":
        with PgSchema() as url:
            got = in_fresh_process(run_ours, n, str(root), url, port)
    else:
        got = in_fresh_process(run_ours, n, str(root), None, port)
    return {"n": n, "db": db, **got, "load": [round(load, 2), round(os.getloadavg()[0], 2)]}


def run_all(sizes: list[int], dbs: list[str], log=print) -> dict:
    """Every size on every store, then the bare script; the figures as one dict."""
    from baocao.mailcatcher import free_port
    from benchmarks.sink import Sink

    runs, bares, started = [], [], time.perf_counter()
    with Sink(free_port()) as sink:
        for n in sizes:
            roots = [Path(tempfile.mkdtemp(prefix=f"baocao-bench-{n}-{db}-")) for db in dbs]
            try:
                for db, root in zip(dbs, roots, strict=True):
                    case = run_case(n, db, root, sink.port)
                    case["mails_received"] = sink.count()
                    runs.append(case)
                    log(_line(case))
                load = os.getloadavg()[0]
                waves = runs[-len(dbs)]["waves"]
                bare = in_fresh_process(run_bare, str(roots[0]), waves, sink.port)
                bare["n"], bare["mails_received"] = n, sink.count()
                bare["load"] = [round(load, 2), round(os.getloadavg()[0], 2)]
                bares.append(bare)
                log(_line({**bare, "db": "bare"}))
            finally:
                for root in roots:
                    shutil.rmtree(root, ignore_errors=True)
    for case in runs:
        del case["waves"]
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "sizes": sizes,
        "dbs": dbs,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "ours": runs,
        "bare": bares,
    }


def _line(case: dict) -> str:
    """One line of progress."""
    secs = " ".join(f"{s} {case['seconds'][s]:.2f}" for s in STAGES)
    return f"N={case['n']:>6} {case['db']:<10} {secs}  rss {case['rss_mb']:.0f} MB"


def with_cycle(seconds: dict) -> dict:
    """The stages' seconds and the cycle's (all but mailing)."""
    return {**seconds, "cycle": sum(seconds[s] for s in CYCLE)}


def print_table(figures: dict) -> None:
    """Stage × N × store: seconds, ms per unit, the bare script's seconds and the ratio."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.width = max(console.width, 100)  # a log file is not cut at 80 columns
    bare = {b["n"]: with_cycle(b["seconds"]) for b in figures["bare"]}
    table = Table(title=f"baocao against the bare script, {figures['date']}")
    for col in ("N", "units", "store", "stage", "ours s", "ms/unit", "bare s", "× bare"):
        table.add_column(
            col, justify="left" if col in ("store", "stage") else "right", no_wrap=True
        )
    for case in figures["ours"]:
        secs = with_cycle(case["seconds"])
        for stage, s in secs.items():
            b = bare[case["n"]][stage]
            table.add_row(
                f"{case['n']:,}",
                f"{case['units']:,}",
                case["db"],
                stage,
                f"{s:.2f}",
                f"{s * 1000 / case['units']:.2f}",
                f"{b:.2f}",
                f"{s / b:.1f}" if b > 0 else "-",
                end_section=stage == "cycle",
            )
    console.print(table)
    rss = Table(title="peak RSS (MB), load average (1 min) before/after, what ingest made")
    for col in ("N", "store", "RSS", "load", "outcomes"):
        rss.add_column(col)
    for case in [*figures["ours"], *[{**b, "db": "bare"} for b in figures["bare"]]]:
        counts = ", ".join(f"{k} {v}" for k, v in case["counts"].items())
        load = "–".join(f"{x:.1f}" for x in case["load"])
        rss.add_row(f"{case['n']:,}", case["db"], f"{case['rss_mb']:.0f}", load, counts)
    console.print(rss)


def draw(figures: dict, path: Path) -> None:
    """Time against units per stage, log-log: ours per store and the bare script."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [*STAGES, "cycle"]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    series = [
        (f"baocao, {db}", [c for c in figures["ours"] if c["db"] == db]) for db in figures["dbs"]
    ]
    series.append(("bare script", figures["bare"]))
    for ax, stage in zip(axes.flat, stages, strict=True):
        for label, cases in series:
            xs = [c["units"] for c in cases]
            ys = [max(with_cycle(c["seconds"])[stage], 1e-4) for c in cases]
            ax.plot(xs, ys, marker="o", label=label, linestyle="--" if "bare" in label else "-")
        ax.set(title=stage, xscale="log", yscale="log", xlabel="units", ylabel="seconds")
        ax.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend()
    fig.suptitle(f"baocao: time against units per stage ({figures['date'][:10]})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="10,100,1000,10000", help="communes added, comma-separated")
    ap.add_argument("--db", default="sqlite,postgresql", help="stores: sqlite, postgresql")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="folder for JSON and PNG")
    ap.add_argument("--no-png", action="store_true", help="write no PNG")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    if unknown := set(dbs) - {"sqlite", "postgresql"}:
        ap.error(f"unknown store(s): {', '.join(sorted(unknown))}")
    figures = run_all(sizes, dbs)
    print_table(figures)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-{dt.datetime.now().strftime('%Y-%m-%d-%H%M')}"
    stem.with_suffix(".json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
    print(f"{figures['wall_seconds']:.0f} s in all; figures: {stem.with_suffix('.json')}")
    if not args.no_png:
        draw(figures, stem.with_suffix(".png"))
        print(f"chart: {stem.with_suffix('.png')}")
    return figures


if __name__ == "__main__":
    main()
