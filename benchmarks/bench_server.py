"""The province on the server path: a Prefect server on PostgreSQL, a process work pool, the
deployments of prefect.yaml and TWO process workers, running a realistic batch of flow runs
for the bundled province (examples/quang-ngai-2026/config, 104 units, two reports).

Everything is made fresh and removed at the end, failure and Ctrl-C included:

    databases   baocao_prefect_bench_<random> (Prefect's own) and baocao_store_bench_<random>
                (BAOCAO_DATABASE_URL) on the PostgreSQL at 127.0.0.1:5432 (user postgres)
    server      `prefect server start` on a free port, on the first database, locked with
                basic auth (baocao.prefect_server.start_server), a temporary PREFECT_HOME; its
                scheduler is off so that only the runs started here run (prefect.yaml's crons
                and the 5-minute ingest would add their own)
    pool        `prefect work-pool create baocao --type process`, `prefect deploy --all`
    workers     `prefect worker start --pool baocao --name worker-1 --limit 2`, and worker-2
    mail        a local SMTP sink (benchmarks/sink.py) behind BAOCAO_MAIL_URL
    config      a copy of the province's config with approval off (its reports go out as
                courtesy copies), behind BAOCAO_CONFIG_DIR

The batch, in four waves (each waits for the one before, as the office's calendar would):

    open        open-period: cchc-quarterly 2026-Q3, 2026-Q4; tcd-monthly 2026-10, -11, -12
    ingest      ingest-submissions, `paths` of the forms returned for 2026-Q4 and 2026-10
                (the returns of tests/test_province.py), two runs per period
    remind      send-reminders on each period's last day for the units (five runs)
    publish     publish-report for 2026-Q4 and 2026-10

Which worker ran a run: the worker that wins the claim of a run (its move SCHEDULED ->
PENDING; the server refuses a second claim) labels the flow run with its name,
`prefect.worker.name` (the `--name` given), in the run's `labels`, and emits the event
`prefect.worker.submitted-flow-run` (resource `prefect.worker.process.<name>`, the run among
its related resources), which the server keeps for the UI's event feed. The table reads the
label and checks it against the event. Not the line "Worker 'worker-1' submitting flow run"
in the run's log: a worker writes it BEFORE claiming the run, so a worker that loses the race
writes it too. The claims each worker lost ("Aborted submission" in its own log) are counted.

Prints a table (each run's name, subject, deployment, state, seconds until a worker claimed
it, until its process ran it and of the run itself, and the worker), totals per worker and the
wall time; then runs the same batch on the embedded default for comparison (one process, one
run after another, the temporary local Prefect, SQLite; `--no-embedded` skips it). Writes JSON
to benchmarks/results/server-<time>.json. Asserts nothing about speed; exits 1 if a run did
not complete.

    .venv/bin/python benchmarks/bench_server.py        (make bench-server)
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

PROVINCE = ROOT / "examples" / "quang-ngai-2026" / "config"
CCHC, TCD = "cchc-quarterly", "tcd-monthly"
PG = dict(host="127.0.0.1", port=5432, user="postgres")
AUTH = f"baocao:{secrets.token_urlsafe(18)}"
POOL = "baocao"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
SUBMITTED = "prefect.worker.submitted-flow-run"
LOST = "Aborted submission of flow run"  # a worker's log line when another claimed it first

# the periods opened and when (each one's opening day; reminders go out on the units' last day)
PERIODS = {
    (CCHC, "2026-Q3"): "2026-09-03T08:00",
    (CCHC, "2026-Q4"): "2026-12-03T08:00",
    (TCD, "2026-10"): "2026-10-09T08:00",
    (TCD, "2026-11"): "2026-11-10T08:00",
    (TCD, "2026-12"): "2026-12-09T08:00",
}
RETURNED = {(CCHC, "2026-Q4"): "2026-12-14T16:00", (TCD, "2026-10"): "2026-10-14T16:00"}
PUBLISHED = {(CCHC, "2026-Q4"): "2026-12-18", (TCD, "2026-10"): "2026-10-20"}


# ---- the pieces: databases, server, workers -----------------------------------------------


@contextmanager
def database(prefix: str):
    """A fresh PostgreSQL database `<prefix>_<random>`, dropped on exit (connections too)."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"dropped database {name}")


def pg_url(driver: str, name: str) -> str:
    return f"postgresql+{driver}://{PG['user']}@{PG['host']}:{PG['port']}/{name}"


def stop(proc: subprocess.Popen, what: str, group: bool = False) -> None:
    """SIGTERM (to its process group when it has its own), then SIGKILL after 30 s."""
    if proc.poll() is not None:
        return
    send = (lambda s: os.killpg(proc.pid, s)) if group else proc.send_signal
    try:
        send(signal.SIGTERM)
        proc.wait(30)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass
    print(f"stopped {what}")


def server(stack: ExitStack, home: Path, db_name: str) -> str:
    """`prefect server start` on PostgreSQL, locked, scheduler off; its API URL."""
    from baocao.mailcatcher import free_port
    from baocao.prefect_server import start_server

    env = {
        "PREFECT_HOME": str(home / "server"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": pg_url("asyncpg", db_name),
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    }
    api, proc = start_server(free_port(), home / "logs" / "server.log", auth=AUTH, env=env)
    stack.callback(stop, proc, "prefect server")
    return api


def cli(env: dict, *args: str) -> str:
    """The `prefect` command line, in the project folder (prefect.yaml), as a client."""
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        raise RuntimeError(f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def start_worker(stack: ExitStack, env: dict, name: str, limit: int, logs: Path):
    """`prefect worker start` in a process group of its own (its runs are its children)."""
    log = (logs / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process"]
        + ["--name", name, "--limit", str(limit)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop the worker and its runs
    )
    stack.callback(log.close)
    stack.callback(stop, proc, name, True)
    return proc


def province_config(folder: Path) -> Path:
    """The province's config with approval off: its reports go out unnumbered, as courtesy
    copies (a numbered report needs someone to approve it in the UI)."""
    shutil.copytree(PROVINCE, folder)
    schedule = folder / "schedule.yaml"
    text = schedule.read_text(encoding="utf-8")
    schedule.write_text(text.replace("approval_required: true", "approval_required: false"))
    for report in (folder / "reports").glob("*.yaml"):
        text = report.read_text(encoding="utf-8")
        text = text.replace("\napproval:\n", "\napproval:\n  courtesy_copy: true\n", 1)
        report.write_text(text, encoding="utf-8")
    return folder


# ---- the API --------------------------------------------------------------------------------


class Api:
    """The server's REST API, logged in."""

    def __init__(self, url: str):
        token = base64.b64encode(AUTH.encode()).decode()
        self.url = url
        self.http = httpx.Client(headers={"Authorization": f"Basic {token}"}, timeout=30)

    def post(self, path: str, body: dict | None = None):
        r = self.http.post(f"{self.url}{path}", json=body or {})
        if r.is_error:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def deployments(self) -> dict[str, dict]:
        """Deployments of the pool, by `flow/deployment` and by id."""
        out = {}
        for d in self.post("/deployments/filter", {"limit": 200}):
            if d.get("work_pool_name") == POOL:
                out[d["name"]] = d
                out[d["id"]] = d
        return out

    def run(self, deployment: dict, parameters: dict) -> str:
        body = {"parameters": parameters}
        return self.post(f"/deployments/{deployment['id']}/create_flow_run", body)["id"]

    def flow_runs(self, ids: list[str]) -> list[dict]:
        return self.post("/flow_runs/filter", {"flow_runs": {"id": {"any_": ids}}, "limit": 200})

    def submitted_by(self, since: str) -> dict[str, str]:
        """flow run id -> the worker that submitted it, from the workers' own events."""
        body = {
            "filter": {"event": {"name": [SUBMITTED]}, "occurred": {"since": since}},
            "limit": 50,  # the most a page holds
        }
        page = self.post("/events/filter", body)
        events = list(page["events"])
        while page.get("next_page"):
            page = self.http.get(page["next_page"]).raise_for_status().json()
            events += page["events"]
        out = {}
        for e in events:
            worker = e["resource"]["prefect.resource.name"]
            for r in e["related"]:
                if r["prefect.resource.role"] == "flow-run":
                    out[r["prefect.resource.id"].removeprefix("prefect.flow-run.")] = worker
        return out

    def pending_at(self, run_id: str) -> str | None:
        """When a worker claimed the run (its PENDING state)."""
        r = self.http.get(f"{self.url}/flow_run_states/", params={"flow_run_id": run_id})
        states = r.raise_for_status().json()
        return next((x["timestamp"] for x in states if x["type"] == "PENDING"), None)

    def logs(self, ids: list[str], level: int = 0) -> list[dict]:
        body = {
            "logs": {"flow_run_id": {"any_": ids}, "level": {"ge_": level}},
            "sort": "TIMESTAMP_ASC",
            "limit": 200,
        }
        out, offset = [], 0
        while batch := self.post("/logs/filter", {**body, "offset": offset}):
            out += batch
            offset += len(batch)
        return out


def wait_all(api: Api, ids: list[str], timeout: float) -> list[dict]:
    """The runs once every one has ended (or raise, naming those still going)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = api.flow_runs(ids)
        going = [r for r in runs if r["state_type"] not in TERMINAL]
        if not going and len(runs) == len(ids):
            return runs
        if time.monotonic() > deadline:
            names = ", ".join(f"{r['name']} ({r['state_name']})" for r in going)
            raise TimeoutError(f"runs not finished after {timeout:.0f} s: {names}")
        time.sleep(2)


# ---- the batch ------------------------------------------------------------------------------


def returned_forms(config: Path, data: Path, folder: Path) -> dict[tuple, list[Path]]:
    """The forms the province's units return for 2026-Q4 and 2026-10 (the figures and the
    missing units of tests/test_province.py), written with their requests' form codes."""
    from baocao.periods import Period
    from baocao.runtime import build_runtime
    from baocao.settings import get_settings
    from tasks.collect import period_dates
    from tests.conftest import request_tokens
    from tests.test_province import (
        DEPARTMENTS,
        MISSING,
        TCD_DEPARTMENTS,
        _filled,
        commune_figures,
        tcd_figures,
    )

    figures = {CCHC: (DEPARTMENTS, commune_figures), TCD: (TCD_DEPARTMENTS, tcd_figures)}
    out = {}
    for report, code in RETURNED:
        rt = build_runtime(
            report_id=report, settings=get_settings(data_dir=data, config_dir=config)
        )
        period = Period.parse(code)
        deadline = period_dates(period, rt.schedule).unit_deadline
        tokens = request_tokens(rt, period)
        depts, communal = figures[report]
        values = {**depts, **{c: communal(c) for c in rt.cfg.resolve_owners(("@cap-xa",))}}
        paths = []
        for unit, v in values.items():
            if unit in MISSING:
                continue
            path = folder / f"{unit}_{code}.xlsx"
            path.write_bytes(_filled(rt, unit, tokens[unit], v, deadline, period))
            paths.append(path)
        out[(report, code)] = paths
    return out


def wave(api: Api, deps: dict, name: str, runs: list[tuple[str, dict]], timeout: float):
    """Start the wave's runs at once, wait for them all; (name, ids, seconds)."""
    t0 = time.monotonic()
    ids = [api.run(deps[dep], params) for dep, params in runs]
    print(f"{name}: {len(ids)} run(s) started", flush=True)
    wait_all(api, ids, timeout)
    took = time.monotonic() - t0
    print(f"{name}: done in {took:.1f} s", flush=True)
    return {"wave": name, "ids": ids, "seconds": round(took, 1)}


def batch(start_wave, config: Path, data: Path, tmp: Path) -> list:
    """The four waves: open, ingest, remind, publish; `start_wave(name, runs)` runs one."""
    waves = []
    opens = [
        ("open-period", {"report": r, "period": p, "as_of": at}) for (r, p), at in PERIODS.items()
    ]
    waves.append(start_wave("open", opens))
    inbox = tmp / "returned"
    inbox.mkdir()
    ingests = []
    for key, paths in returned_forms(config, data, inbox).items():
        half = len(paths) // 2
        for part in (paths[:half], paths[half:]):
            params = {"paths": [str(p) for p in part], "as_of": RETURNED[key]}
            ingests.append(("ingest-submissions", params))
    waves.append(start_wave("ingest", ingests))
    reminds = [
        ("send-reminders", {"report": r, "period": p, "as_of": last_day(config, r, p)})
        for r, p in PERIODS
    ]
    waves.append(start_wave("remind", reminds))
    publishes = [
        (
            "publish-report",
            {"report": r, "period": p, "report_date": day, "as_of": f"{day}T09:00"},
        )
        for (r, p), day in PUBLISHED.items()
    ]
    waves.append(start_wave("publish", publishes))
    return waves


# ---- the same batch embedded: one process, the temporary local Prefect, SQLite ------------

FLOWS = {
    "open-period": "flows.open_period:open_period",
    "ingest-submissions": "flows.ingest_submissions:ingest_submissions",
    "send-reminders": "flows.send_reminders:send_reminders",
    "publish-report": "flows.publish_report:publish_report",
}


def embedded_wave(name: str, runs: list[tuple[str, dict]]) -> dict:
    """The wave's runs called one after another in this process (as the command line does)."""
    import importlib

    t0 = time.monotonic()
    done = []
    for dep, params in runs:
        module, fn = FLOWS[dep].split(":")
        t = time.monotonic()
        state = getattr(importlib.import_module(module), fn)(**params, return_state=True)
        done.append({"deployment": dep, "state": state.name, "ran_s": time.monotonic() - t})
    took = time.monotonic() - t0
    print(f"embedded {name}: {len(runs)} run(s) in {took:.1f} s", file=sys.stderr, flush=True)
    return {"wave": name, "seconds": round(took, 1), "runs": done}


def embedded_child(tmp: Path) -> None:
    """Run in a fresh process by `embedded`: the batch, its waves as JSON on stdout's last line."""
    waves = batch(embedded_wave, Path(os.environ["BAOCAO_CONFIG_DIR"]), tmp / "data", tmp)
    print(json.dumps(waves))


def embedded(config: Path, tmp: Path, mail_url: str) -> dict:
    """The same batch on the embedded default (no PREFECT_API_URL: the temporary local
    Prefect; the SQLite store in the data folder), in a fresh process; its waves and wall."""
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BAOCAO_"))}
    env |= {
        "PREFECT_HOME": str(tmp / "prefect"),
        "BAOCAO_CONFIG_DIR": str(config),
        "BAOCAO_DATA_DIR": str(tmp / "data"),
        "BAOCAO_MAIL_URL": mail_url,
    }
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, __file__, "--embedded-child", str(tmp)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall = time.monotonic() - t0
    if done.returncode:
        raise RuntimeError(f"embedded batch failed:\n{done.stderr[-4000:]}")
    waves = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": round(wall, 1), "waves": waves}


def last_day(config: Path, report: str, code: str) -> str:
    """08:00 of the units' last day: the reminder "on the day"."""
    from baocao.config import load_config
    from baocao.periods import Period
    from tasks.collect import period_dates

    cfg = load_config(config)
    dates = period_dates(Period.parse(code), cfg.report(report).schedule)
    return f"{dates.unit_last_day}T08:00"


# ---- the table ------------------------------------------------------------------------------


def seconds(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    return (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds()


def rows(api: Api, deps: dict, waves: list, since: str) -> list[dict]:
    """One row per run: wave, name, subject, deployment, state, times, worker (its label on
    the run, and the worker's event)."""
    ids = [i for w in waves for i in w["ids"]]
    wave_of = {i: w["wave"] for w in waves for i in w["ids"]}
    by_event: dict[str, str] = {}
    deadline = time.monotonic() + 60  # the server stores events a few seconds after they come
    while len(by_event) < len(ids) and time.monotonic() < deadline:
        by_event = api.submitted_by(since)
        time.sleep(0 if len(by_event) >= len(ids) else 3)
    out = []
    for r in sorted(api.flow_runs(ids), key=lambda r: r["start_time"] or ""):
        dep = deps.get(r["deployment_id"], {}).get("name", "?")
        pending = api.pending_at(r["id"])
        out.append(
            {
                "wave": wave_of[r["id"]],
                "name": r["name"],
                "what": what(r["parameters"]),
                "deployment": dep,
                "state": r["state_name"],
                "claimed_s": seconds(r["expected_start_time"], pending),
                "started_s": seconds(pending, r["start_time"]),
                "ran_s": seconds(r["start_time"], r["end_time"]),
                "worker": r["labels"].get("prefect.worker.name", "?"),
                "worker_event": by_event.get(r["id"], "?"),
                "pid": r.get("infrastructure_pid"),
                "id": r["id"],
                "message": r["state"]["message"] if r.get("state") else None,
            }
        )
    return out


def what(params: dict) -> str:
    """The run's subject: report and period, or how many files it takes in."""
    if params.get("paths"):
        return f"{len(params['paths'])} files, {params['as_of'][:10]}"
    return f"{params.get('report', '')} {params.get('period', '')}".strip()


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def lost_claims(logs: Path) -> dict[str, int]:
    """Per worker, the runs it tried to claim after the other worker had."""
    return {
        f.stem: f.read_text(encoding="utf-8", errors="replace").count(LOST)
        for f in sorted(logs.glob("worker-*.log"))
    }


def print_table(table: list[dict], waves: list, wall: float, lost: dict[str, int]) -> dict:
    """The runs, the totals per worker and the wall time; the totals returned."""
    print()
    print("claimed: from the run's creation to a worker's claim (PENDING: polling, free slots);")
    print("start: from the claim to the flow running (a fresh process); ran: the run itself, s")
    print(
        f"{'wave':8} {'run':22} {'subject':24} {'deployment':19} {'state':10} "
        f"{'claimed':>7} {'start':>6} {'ran':>6}  worker"
    )
    for r in table:
        agree = "" if r["worker"] == r["worker_event"] else f" (event: {r['worker_event']})"
        print(
            f"{r['wave']:8} {r['name'][:22]:22} {r['what'][:24]:24} {r['deployment']:19} "
            f"{r['state']:10} {fmt(r['claimed_s']):>7} {fmt(r['started_s']):>6} "
            f"{fmt(r['ran_s']):>6}  {r['worker']}{agree}"
        )
    totals: dict = defaultdict(lambda: {"runs": 0, "completed": 0, "busy_s": 0.0})
    for worker, n in lost.items():
        totals[worker]["claims_lost"] = n
    for r in table:
        t = totals[r["worker"]]
        t["runs"] += 1
        t["completed"] += r["state"] == "Completed"
        t["busy_s"] = round(t["busy_s"] + (r["ran_s"] or 0), 1)
    print()
    for worker, t in sorted(totals.items()):
        print(
            f"{worker}: {t['runs']} run(s), {t['completed']} completed, {t['busy_s']:.1f} s "
            f"running, {t.get('claims_lost', '?')} claim(s) lost to the other worker"
        )
    print("waves: " + ", ".join(f"{w['wave']} {w['seconds']:.1f} s" for w in waves))
    print(f"wall, the four waves (forms written between them included): {wall:.1f} s")
    return dict(totals)


def store_counts(url: str) -> dict:
    """What the store holds afterwards: requests, submissions by status, messages sent."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as c:
        subs = dict(c.execute(sa.text("SELECT status, count(*) FROM submission GROUP BY 1")).all())
        sent = c.execute(
            sa.text("SELECT kind, count(*) FROM outbox_message WHERE status='sent' GROUP BY 1")
        ).all()
    engine.dispose()
    return {"submissions": subs, "sent": dict(sent)}


def show_failures(api: Api, table: list[dict]) -> None:
    """The error lines of the runs that did not complete."""
    bad = [r for r in table if r["state"] != "Completed"]
    for r in bad:
        print(f"\n{r['name']} ({r['deployment']}): {r['state']}: {r['message']}")
        for log in api.logs([r["id"]], level=40)[-10:]:
            print("  " + log["message"][:2000].replace("\n", "\n  "))


# ---- main -----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=2, help="runs at once per worker (--limit)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds a wave may take")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    ap.add_argument(
        "--no-embedded", action="store_true", help="skip the same batch on the embedded default"
    )
    ap.add_argument("--embedded-child", type=Path, help=argparse.SUPPRESS)  # see `embedded`
    args = ap.parse_args()
    if args.embedded_child:
        embedded_child(args.embedded_child)
        return 0
    # Ctrl-C and SIGTERM unwind: every `finally` and callback below runs (SIGINT set again,
    # as a shell starting us in the background leaves it ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from baocao.mailcatcher import free_port
    from benchmarks.sink import Sink

    started, load = dt.datetime.now(dt.UTC), os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="baocao-bench-server-"))
    (tmp / "logs").mkdir()
    ok = False
    try:
        with ExitStack() as stack:
            prefect_db = stack.enter_context(database("baocao_prefect_bench"))
            store_db = stack.enter_context(database("baocao_store_bench"))
            store_url = pg_url("psycopg", store_db)
            sink = stack.enter_context(Sink(free_port()))
            config = province_config(tmp / "config")
            data = tmp / "data"
            t0 = time.monotonic()
            api_url = server(stack, tmp, prefect_db)
            print(f"server on {api_url} (PostgreSQL {prefect_db}) in {time.monotonic() - t0:.1f} s")
            env = {
                **os.environ,
                "PREFECT_API_URL": api_url,
                "PREFECT_API_AUTH_STRING": AUTH,
                "PREFECT_HOME": str(tmp / "client"),
                "BAOCAO_HOME": str(ROOT),  # prefect.yaml's pull step: the runs' working folder
                "BAOCAO_CONFIG_DIR": str(config),
                "BAOCAO_DATA_DIR": str(data),
                "BAOCAO_DATABASE_URL": store_url,
                "BAOCAO_MAIL_URL": mail_url(sink.port),
            }
            os.environ.update({k: v for k, v in env.items() if k.startswith("BAOCAO_")})
            cli(env, "work-pool", "create", POOL, "--type", "process", "--overwrite")
            cli(env, "--no-prompt", "deploy", "--all")
            api = Api(api_url)
            deps = api.deployments()
            for i in (1, 2):
                start_worker(stack, env, f"worker-{i}", args.limit, tmp / "logs")
            since = dt.datetime.now(dt.UTC).isoformat()
            t1 = time.monotonic()
            waves = batch(
                lambda name, runs: wave(api, deps, name, runs, args.timeout), config, data, tmp
            )
            wall = time.monotonic() - t1
            table = rows(api, deps, waves, since)
            totals = print_table(table, waves, wall, lost_claims(tmp / "logs"))
            store = store_counts(store_url)
            mail = sink.count()
            print(f"store: {store}; mail sink: {mail}")
            show_failures(api, table)
            ok = all(r["state"] == "Completed" for r in table)
        result = {
            "load_before": load,
            "limit": args.limit,
            "table": table,
            "totals": totals,
            "waves": waves,
            "wall": wall,
            "store": store,
            "mail": mail,
        }
        if ok and not args.no_embedded:  # the server and workers are stopped by now
            with Sink(free_port()) as sink:
                result["embedded"] = embedded(config, tmp / "embedded", mail_url(sink.port))
                result["embedded"]["mail"] = sink.count()
            print_embedded(result["embedded"], wall)
        write_json(started, result)
    finally:
        if ok and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}/logs")
    return 0 if ok else 1


def mail_url(port: int) -> str:
    return f"mailto://127.0.0.1:{port}?from=baocao@quangngai.gov.vn&mode=insecure"


def print_embedded(emb: dict, wall: float) -> None:
    runs = [r for w in emb["waves"] for r in w["runs"]]
    states = Counter(r["state"] for r in runs)
    print(
        f"\nthe same batch embedded (one process, one run after another, the temporary local "
        f"Prefect, SQLite): {len(runs)} runs {dict(states)}, "
        + ", ".join(f"{w['wave']} {w['seconds']:.1f} s" for w in emb["waves"])
        + f"; {emb['wall_s']:.1f} s with the process's start (server path: {wall:.1f} s); "
        f"mail sink: {emb['mail']}"
    )


def write_json(started: dt.datetime, result: dict) -> None:
    import prefect

    out = HERE / "results" / f"server-{started:%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    table, waves = result["table"], result["waves"]
    doc = {
        "started": started.isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "prefect": prefect.__version__,
            "load_before": [round(x, 2) for x in result["load_before"]],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        "workers": 2,
        "limit_per_worker": result["limit"],
        "wall_s": round(result["wall"], 1),
        "waves": [{k: w[k] for k in ("wave", "seconds")} | {"runs": len(w["ids"])} for w in waves],
        "per_worker": result["totals"],
        "runs": table,
        "store": result["store"],
        "mail": result["mail"],
        "by_worker": Counter(r["worker"] for r in table),
        "embedded": result.get("embedded"),
    }
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # everything was stopped and dropped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
