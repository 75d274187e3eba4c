"""The demo's wall time, fresh and warm: `python benchmarks/bench_demo.py [--runs 3]`.

Each round starts with an empty PREFECT_HOME (the temporary Prefect server creates its
database: the "fresh" figure), then runs the demo again on it `--runs` times ("warm").
Every run is its own process, as `baocao demo` is; the CPU time is that of the process
and the children it waited for (the temporary server). Prints a table, no assertions.
`--tree DIR` times another checkout of baocao (e.g. an older commit, unpacked with
`git archive`) with this environment's Python, for before/after figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = "from app.cli import app; app(['demo', '--out', {out!r}])"


def run_demo(tree: Path, prefect_home: Path, out: Path) -> tuple[float, float]:
    """One demo in its own process: (wall seconds, CPU seconds of it and its children)."""
    env = {**os.environ, "PREFECT_HOME": str(prefect_home)}
    env.pop("PREFECT_API_URL", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", DEMO.format(out=str(out))],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"demo failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="warm runs per round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, each from a fresh home")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the baocao checkout to time")
    args = parser.parse_args(argv)
    fresh, warm = [], []
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        for r in range(args.rounds):
            home = Path(tmp) / f"prefect-home-{r}"
            for i in range(args.runs + 1):
                wall, cpu = run_demo(args.tree, home, Path(tmp) / f"out-{r}-{i}")
                (warm if i else fresh).append((wall, cpu))
                print(
                    f"round {r + 1} {'warm' if i else 'fresh'}: {wall:5.1f} s wall, {cpu:5.1f} s CPU"
                )
    print(f"\nthe demo ({args.tree}), {os.cpu_count()} cores")
    for label, rows in (("fresh PREFECT_HOME", fresh), ("warm", warm)):
        walls = [w for w, _ in rows]
        print(
            f"  {label:<19} min {min(walls):5.1f} s  median {statistics.median(walls):5.1f} s  "
            f"(CPU median {statistics.median(c for _, c in rows):5.1f} s, {len(rows)} runs)"
        )


if __name__ == "__main__":
    main()
