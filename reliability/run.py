"""The reliability suite: `make reliability` (or `python -m reliability.run`).

Reproduces each class of failure of issue 6 against the real `baocao` command line, each
scenario in its own data folder, inbox, SMTP sink on loopback and store (SQLite, or its own
PostgreSQL schema), all commands talking to one Prefect server started for the suite (basic
auth on). Prints one line per scenario: files tried, faults injected, files lost, versions
doubled, messages duplicated, unhandled exceptions (a traceback in any command's output),
checks failed; exits 1 if any of those is non-zero.

    python -m reliability.run                  # everything (~10 min on 2 cores)
    python -m reliability.run --only store,access
    python -m reliability.run --scale 0.25     # fewer files per scenario
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from reliability.harness import Suite, Tally

SCENARIOS = ["poison", "crashes", "overlap", "outbox", "store", "access"]
COLUMNS = [
    ("scenario", None),
    ("files tried", "files_tried"),
    ("faults injected", "faults"),
    ("files lost", "lost"),
    ("versions doubled", "doubled"),
    ("messages duplicated", "dup_messages"),
    ("unhandled exceptions", "exceptions"),
    ("checks failed", None),
    ("s", None),
    ("result", None),
]


def run_scenarios(suite: Suite, names: list[str], say=print) -> list[Tally]:
    """Run the named scenario modules; a bug in the suite itself is a failed line, not a
    stop."""
    tallies: list[Tally] = []
    for name in names:
        started = time.monotonic()
        say(f"-- {name} ...", flush=True)
        try:
            module = importlib.import_module(f"reliability.{name}")
            got = module.run(suite)
        except Exception as exc:
            t = Tally(f"{name}: the suite itself failed")
            t.failures.append(f"{type(exc).__name__}: {exc}")
            t.note(traceback.format_exc(limit=6))
            got = [t]
        spent = time.monotonic() - started
        for t in got:
            if not t.seconds:
                t.seconds = spent / len(got)
            say(f"   {'ok  ' if t.ok else 'FAIL'} {t.scenario} ({t.seconds:.0f} s)", flush=True)
        tallies += got
    return tallies


def _cells(t: Tally) -> list[str]:
    dup = str(t.dup_messages) + (f" (+{t.dup_recognisable} same-ID)" if t.dup_recognisable else "")
    return [
        t.scenario,
        str(t.files_tried),
        str(t.faults),
        str(t.lost),
        str(t.doubled),
        dup,
        str(t.exceptions),
        f"{len(t.failures)}/{t.checks}",
        f"{t.seconds:.0f}",
        "ok" if t.ok else "FAIL",
    ]


def _total(tallies: list[Tally]) -> Tally:
    total = Tally(f"total ({len(tallies)} scenarios)")
    for t in tallies:
        for f in ("files_tried", "faults", "lost", "doubled", "dup_messages", "exceptions"):
            setattr(total, f, getattr(total, f) + getattr(t, f))
        total.dup_recognisable += t.dup_recognisable
        total.checks += t.checks
        total.failures += t.failures
        total.seconds += t.seconds
    return total


def table(tallies: list[Tally], markdown: bool = False) -> str:
    rows = [_cells(t) for t in tallies] + [_cells(_total(tallies))]
    head = [c for c, _ in COLUMNS]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    rule = "-" * len(line(head))
    return "\n".join([line(head), rule, *map(line, rows[:-1]), rule, line(rows[-1])])


def report(tallies: list[Tally]) -> str:
    out = []
    for t in tallies:
        if t.failures or t.notes:
            out.append(f"\n{t.scenario}: {'ok' if t.ok else 'FAILED'}")
            out += [f"  x {f}" for f in t.failures[:25]]
            if len(t.failures) > 25:
                out.append(f"  ... and {len(t.failures) - 25} more")
            out += [f"  - {n}" for n in t.notes[:12]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="reliability", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help=f"comma-separated: {','.join(SCENARIOS)}")
    ap.add_argument("--scale", type=float, default=1.0, help="share of the files per scenario")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders")
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    ap.add_argument(
        "--ephemeral-prefect",
        action="store_true",
        help="each command starts Prefect's temporary server instead of sharing one",
    )
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or SCENARIOS
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; choose from {SCENARIOS}")
    root = Path(tempfile.mkdtemp(prefix="baocao-reliability-"))
    suite = Suite(root, scale=args.scale, ephemeral_prefect=args.ephemeral_prefect)
    started = time.monotonic()
    print(f"baocao reliability suite: {', '.join(names)} (work folder {root})", flush=True)
    try:
        suite.start()
        tallies = run_scenarios(suite, names)
    finally:
        suite.stop()
    tallies_ok = all(t.ok for t in tallies)
    print("\n" + table(tallies))
    print(report(tallies))
    print(
        f"\n{len(tallies)} scenarios in {time.monotonic() - started:.0f} s: "
        f"{sum(t.ok for t in tallies)} passed, {sum(not t.ok for t in tallies)} failed"
    )
    if args.markdown:
        args.markdown.write_text(table(tallies, markdown=True) + "\n", encoding="utf-8")
    if args.keep or not tallies_ok:
        print(f"work folder kept: {root} (logs of every command under */logs/)")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if tallies_ok else 1


if __name__ == "__main__":
    sys.exit(main())
