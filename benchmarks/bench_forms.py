"""Writing a period's forms for N units: XlsxWriter once per unit (`build_form`, as before)
against one workbook per layout with each unit stamped into it (`write_forms` now). Both
write the files and hash them, as opening a period does. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_forms.py --units 2000 10000
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import secrets
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from baocao import forms
from baocao.config import load_config
from baocao.periods import Period, end_of_day
from baocao.settings import PROJECT_ROOT
from tasks.collect import write_forms

PERIOD = Period.parse("2022-Q1")
DEADLINE = end_of_day(dt.date(2022, 3, 16))
NOW = dt.datetime(2022, 3, 7, 1, 0, tzinfo=dt.UTC)


class GrownConfig:
    """The bundled config's units plus communes cloned from SON-DUNG up to `units`: what
    `write_forms` reads of a config (body, unit_map, indicators_of)."""

    def __init__(self, units: int):
        cfg = load_config(PROJECT_ROOT / "config")
        self.body, self.report = cfg.body, cfg.report()
        self.unit_map = {u: cfg.unit_map[u] for u in cfg.expected_units(self.report)}
        commune = cfg.unit_map["SON-DUNG"]
        for n in range(units - len(self.unit_map)):
            code = f"XA-{n:05d}"
            self.unit_map[code] = commune.model_copy(update={"code": code, "name": f"UBND xã {n}"})
        self._owned = {
            u: cfg.indicators_of(self.report, u) for u in cfg.expected_units(self.report)
        }
        self._commune = self._owned["SON-DUNG"]

    def indicators_of(self, report, code: str):
        return self._owned.get(code, self._commune)


def one_by_one(cfg: GrownConfig, folder: Path) -> None:
    """Before: XlsxWriter writes each unit's form."""
    for code, unit in cfg.unit_map.items():
        content = forms.build_form(
            body=cfg.body,
            report=cfg.report,
            unit=unit,
            period=PERIOD,
            indicators=cfg.indicators_of(cfg.report, code),
            token=secrets.token_hex(8),
            deadline=DEADLINE,
            created=NOW,
        )
        (folder / f"{code}_{PERIOD.code}.xlsx").write_bytes(content)
        hashlib.sha256(content).hexdigest()


def stamped(cfg: GrownConfig, folder: Path) -> None:
    """After: write_forms, one workbook per layout."""
    settings = SimpleNamespace(forms_dir=folder)
    period_row = SimpleNamespace(id=1, unit_deadline=DEADLINE)
    write_forms(settings, cfg, cfg.report, PERIOD, period_row, list(cfg.unit_map), NOW)


def timed(fn, cfg: GrownConfig) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "stamped"
        folder.mkdir()
        start = time.perf_counter()
        fn(cfg, folder)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[2000, 10000])
    args = parser.parse_args()
    print(f"{'units':>7} {'build_form':>12} {'stamped':>10} {'ms/form':>15} {'ratio':>6}")
    for n in args.units:
        cfg = GrownConfig(n)
        before, after = timed(one_by_one, cfg), timed(stamped, cfg)
        per = f"{before / n * 1e3:.2f} -> {after / n * 1e3:.2f}"
        print(f"{n:>7} {before:>10.2f} s {after:>8.2f} s {per:>15} {before / after:>5.1f}x")


if __name__ == "__main__":
    main()
