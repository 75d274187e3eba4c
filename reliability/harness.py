"""What every scenario shares: a tally of what went wrong, a workspace (its own data folder,
inbox, Prefect home, SMTP sink and database) and the `baocao` command run as a user runs it.

Everything listens and connects on loopback only; every wait and every loop is bounded.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "son-tay-2022-q1"
FIGURES: dict[str, dict] = yaml.safe_load((EXAMPLE / "figures.yaml").read_text(encoding="utf-8"))
REPORT_ID = "cchc-quarterly"
PERIOD = "2022-Q1"
OPEN_AT = "2022-03-07T08:00"  # units' deadline: 24:00 on 16/03/2022
INGEST_AT = "2022-03-11T10:15"
ONE_REPORT_VERBS = ("open", "publish", "approve", "status", "form", "explain")
PUBLISH_ARGS = ["publish", PERIOD, "--date", "2022-04-05", "--as-of", "2022-04-05T09:00"]
UNITS = list(FIGURES)  # the 14 reporting units of the bundled Sơn Tây config

PG_HOST, PG_PORT, PG_USER, PG_DB = "127.0.0.1", 5432, "postgres", "test"


def baocao_exe() -> str:
    """The installed command, as a user calls it (.venv/bin/baocao)."""
    here = Path(sys.executable).parent / "baocao"
    return str(here if here.exists() else ROOT / ".venv" / "bin" / "baocao")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- the tally ---------------------------------------------------------------------------


@dataclass
class Tally:
    """One line of the suite's table: what one scenario tried and what went wrong."""

    scenario: str
    files_tried: int = 0
    faults: int = 0
    lost: int = 0
    doubled: int = 0
    dup_messages: int = 0
    dup_recognisable: int = 0  # a resend of the in-flight message with its own Message-ID
    exceptions: int = 0
    checks: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, ok: bool, what: str) -> bool:
        """One expectation; `what` says what was expected and what happened."""
        self.checks += 1
        if not ok:
            self.failures.append(what)
        return bool(ok)

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def ok(self) -> bool:
        return not (
            self.lost or self.doubled or self.dup_messages or self.exceptions or self.failures
        )


# ---- running the command line ------------------------------------------------------------


@dataclass
class CliRun:
    args: list[str]
    rc: int | None
    out: str
    err: str
    seconds: float
    timed_out: bool = False
    fault: str = ""

    @property
    def killed(self) -> bool:
        return self.rc == -signal.SIGKILL

    @property
    def text(self) -> str:
        return self.out + "\n" + self.err

    @property
    def traceback(self) -> str:
        """The exception line of the first traceback printed, or ''."""
        text = self.text
        if "Traceback" not in text:
            return ""
        tail = text[text.index("Traceback") :].splitlines()
        for line in tail[1:]:
            s = line.strip(" │|╰─╯")
            if s and not s.startswith(("File ", "/", "...", "^")) and ("Error" in s or ":" in s):
                if not line.startswith((" ", "│")):
                    return s[:200]
        return tail[0][:200]

    def user_lines(self) -> list[str]:
        """Non-empty stderr lines that are not Prefect's own log lines (`HH:MM:SS.mmm | ...`)."""
        lines = []
        for line in self.err.splitlines():
            s = line.strip()
            if not s or (len(s) > 13 and s[2] == ":" and s[5] == ":" and " | " in s[:20]):
                continue
            if s.startswith("See https://www.prefect.io"):
                continue
            lines.append(s)
        return lines


def _kill_group(proc: subprocess.Popen) -> None:
    """Whatever the command started and left behind (its own process group) is ended."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Running:
    """A `baocao` command started in the background (overlap, hanging servers)."""

    def __init__(self, ws: Workspace, args: list[str], env: dict, fault: str, log: Path):
        self.ws, self.args, self.fault = ws, args, fault
        self.out_path, self.err_path = log.with_suffix(".out"), log.with_suffix(".err")
        self.started = time.monotonic()
        self._out, self._err = self.out_path.open("wb"), self.err_path.open("wb")
        self.proc = subprocess.Popen(
            [baocao_exe(), *args],
            cwd=ws.dir,
            env=env,
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait(self, timeout: float) -> CliRun:
        timed_out = False
        try:
            self.proc.wait(timeout=max(0.1, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(self.proc)
            self.proc.wait(timeout=30)
        _kill_group(self.proc)
        self._out.close()
        self._err.close()
        run = CliRun(
            self.args,
            self.proc.returncode,
            self.out_path.read_text(encoding="utf-8", errors="replace"),
            self.err_path.read_text(encoding="utf-8", errors="replace"),
            time.monotonic() - self.started,
            timed_out,
            self.fault,
        )
        self.ws.record(run)
        return run


# ---- the workspace -----------------------------------------------------------------------


class Suite:
    """What the scenarios of one suite run share: a temporary root, one Prefect server (with
    basic auth) that every command talks to, and the PostgreSQL server if it answers."""

    def __init__(self, root: Path, scale: float = 1.0, ephemeral_prefect: bool = False):
        self.root = root
        self.scale = scale
        self.prefect_env: dict[str, str] = {}
        self._server: subprocess.Popen | None = None
        self.ephemeral_prefect = ephemeral_prefect
        self.pg_error = pg_unreachable()

    def n(self, count: int, minimum: int = 1) -> int:
        return max(minimum, int(round(count * self.scale)))

    def start(self) -> None:
        if self.ephemeral_prefect:
            return
        import inspect

        from baocao.prefect_server import start_server

        auth = f"baocao:{secrets.token_urlsafe(16)}"
        env = {
            "PREFECT_HOME": str(self.root / "prefect-server"),
            "PREFECT_SERVER_API_AUTH_STRING": auth,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        log = self.root / "prefect-server.log"
        if "auth" in inspect.signature(start_server).parameters:
            api, self._server = start_server(free_port(), log, auth=auth, env=env)
        else:
            api, self._server = start_server(free_port(), log, env=env)
        self.prefect_env = {"PREFECT_API_URL": api, "PREFECT_API_AUTH_STRING": auth}

    def stop(self) -> None:
        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._server.kill()
            self._server = None


def pg_unreachable() -> str:
    """'' when PostgreSQL answers on 127.0.0.1:5432, else why not."""
    try:
        import psycopg

        psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_DB, connect_timeout=5
        ).close()
        return ""
    except Exception as exc:  # any reason: the PostgreSQL scenarios say so and fail
        return f"{type(exc).__name__}: {str(exc).strip()[:200]}"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_DB, connect_timeout=5, autocommit=True
    ) as conn:
        conn.execute(sql)


class Workspace:
    """One scenario's world: data folder, inbox, Prefect home, an SMTP sink on loopback and
    the store (SQLite in the data folder, or a PostgreSQL schema of its own)."""

    def __init__(
        self,
        suite: Suite,
        name: str,
        tally: Tally,
        *,
        postgres: bool = False,
        sink=None,
        ephemeral_prefect: bool = False,
    ):
        self.suite, self.name, self.tally = suite, name, tally
        self.ephemeral_prefect = ephemeral_prefect or suite.ephemeral_prefect
        self.dir = suite.root / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.data = self.dir / "data"
        self.inbox = self.dir / "inbox"
        self.logs = self.dir / "logs"
        for d in (self.data, self.inbox, self.logs):
            d.mkdir(parents=True)
        self.postgres = postgres
        self.schema = f"baocao_rel_{uuid.uuid4().hex[:8]}" if postgres else ""
        self._sink_factory = sink
        self.sink = None
        self.runs: list[CliRun] = []
        self._engine: sa.Engine | None = None
        self.env_extra: dict[str, str] = {}
        self._n = 0

    # context
    def __enter__(self) -> Workspace:
        from baocao.mailcatcher import MailCatcher

        self.sink = (self._sink_factory or MailCatcher)(self.dir / "mail")
        self.sink.__enter__()
        if self.postgres:
            _pg_admin(f'CREATE SCHEMA "{self.schema}"')
        return self

    def __exit__(self, *exc) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self.sink is not None:
            self.sink.__exit__(None, None, None)
        if self.postgres:
            try:
                _pg_admin(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            except Exception as e:  # a schema left behind is named, not hidden
                self.tally.note(f"schema {self.schema} not dropped: {e}")

    # settings
    @property
    def database_url(self) -> str:
        if self.postgres:
            return (
                f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"
                f"?options=-csearch_path%3D{self.schema}"
            )
        return f"sqlite:///{(self.data / 'baocao.sqlite').resolve()}"

    @property
    def sqlite_file(self) -> Path:
        return self.data / "baocao.sqlite"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAOCAO_", "PREFECT_"))}
        env.update(
            {
                "BAOCAO_DATA_DIR": str(self.data),
                "BAOCAO_INBOX_DIR": str(self.inbox),
                "BAOCAO_MAIL_URL": self.sink.mail_url,
                "PREFECT_HOME": str(self.dir / "prefect"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_LOGGING_LEVEL": "WARNING",
                "COLUMNS": "250",
                "NO_COLOR": "1",
                "TERM": "dumb",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if not self.ephemeral_prefect:  # else each command starts Prefect's temporary server
            env.update(self.suite.prefect_env)
        if self.postgres:
            env["BAOCAO_DATABASE_URL"] = self.database_url
        env.update(self.env_extra)
        env.update(extra)
        return env

    # the command line
    def _log_path(self, args: list[str]) -> Path:
        self._n += 1
        n = self._n
        verb = args[0] if args else "baocao"
        return self.logs / f"{n:03d}_{verb}"

    def record(self, run: CliRun) -> None:
        self.runs.append(run)
        with (self.logs / "runs.txt").open("a", encoding="utf-8") as log:
            log.write(
                f"baocao {' '.join(run.args)}  fault={run.fault or '-'}  exit={run.rc}  "
                f"{run.seconds:.1f} s{'  TIMED OUT' if run.timed_out else ''}\n"
            )
        if run.traceback:
            self.tally.exceptions += 1
            self.tally.failures.append(
                f"traceback in `baocao {' '.join(run.args[:2])}`: {run.traceback}"
            )
        if run.fault:
            if run.killed:
                self.tally.faults += 1
            else:
                self.tally.failures.append(
                    f"fault {run.fault} not reached: `baocao {run.args[0]}` ended with "
                    f"exit {run.rc} instead of being killed there"
                )
        if run.timed_out:
            self.tally.failures.append(
                f"`baocao {' '.join(run.args[:2])}` did not end within {run.seconds:.0f} s"
            )

    def start(self, *args: str, fault: str = "", env: dict | None = None) -> Running:
        if args and args[0] in ONE_REPORT_VERBS and "--report" not in args:
            args = (*args, "--report", REPORT_ID)  # the bundled config holds two reports
        extra = dict(env or {})
        if fault:
            extra["BAOCAO_FAULT"] = fault
        return Running(self, list(args), self.env(**extra), fault, self._log_path(list(args)))

    def cli(
        self, *args: str, fault: str = "", env: dict | None = None, timeout: float = 300
    ) -> CliRun:
        return self.start(*args, fault=fault, env=env).wait(timeout)

    def open_period(self) -> CliRun:
        run = self.cli("open", PERIOD, "--as-of", OPEN_AT)
        self.tally.check(run.rc == 0, f"`baocao open {PERIOD}` failed (exit {run.rc})")
        return run

    def ingest(self, *, as_of: str = INGEST_AT, fault: str = "", timeout: float = 600) -> CliRun:
        return self.cli("ingest", "--as-of", as_of, fault=fault, timeout=timeout)

    # the store
    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        return self._engine

    def q(self, sql: str, **params) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]

    def tokens(self) -> dict[str, dict]:
        """unit code -> {token, form_path} of the period's requests."""
        rows = self.q(
            "SELECT r.unit_code, r.token, r.form_path FROM collection_request r "
            "JOIN reporting_period p ON p.id = r.period_id WHERE p.code = :c",
            c=PERIOD,
        )
        return {r["unit_code"]: r for r in rows}

    # files
    def put(self, name: str, content: bytes, mtime: float | None = None) -> Path:
        """Drop a file into the inbox as a unit's mail client or a clerk would."""
        path = self.inbox / name
        tmp = self.dir / ("." + name + ".tmp")
        tmp.write_bytes(content)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        tmp.replace(path)
        return path

    def inbox_left(self) -> list[str]:
        """Files still in the inbox itself (not its processed/ or claim subfolders)."""
        return sorted(p.name for p in self.inbox.iterdir() if p.is_file())


# ---- counting ----------------------------------------------------------------------------


def receipts_by_sha(ws: Workspace) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in ws.q("SELECT * FROM receipt ORDER BY id"):
        out[r["sha256"]].append(r)
    return out


def submissions_by_sha(ws: Workspace) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in ws.q("SELECT * FROM submission ORDER BY id"):
        out[r["sha256"]].append(r)
    return out


def count_store(ws: Workspace, files: dict[str, bytes], *, expect_submission: bool) -> None:
    """Files lost and versions doubled for `files` (name -> content, each content distinct):
    every file must have exactly one receipt, none left `received`, and, when they are
    forms with a unit's token, exactly one submission (version) each."""
    t = ws.tally
    receipts = receipts_by_sha(ws)
    subs = submissions_by_sha(ws)
    lost, doubled, extra_receipts = [], 0, 0
    for name, content in files.items():
        h = sha256(content)
        if expect_submission:
            if not subs.get(h):
                lost.append(name)
            doubled += max(0, len(subs.get(h, [])) - 1)
        elif not receipts.get(h):
            lost.append(name)
        extra_receipts += max(0, len(receipts.get(h, [])) - 1)
    t.lost += len(lost)
    t.doubled += doubled
    if lost:
        t.failures.append(f"{len(lost)} file(s) lost, e.g. {', '.join(lost[:3])}")
    if doubled:
        t.failures.append(f"{doubled} version(s) stored twice for the same file")
    t.check(not extra_receipts, f"{extra_receipts} file(s) with more than one receipt")
    stuck = ws.q("SELECT original_name FROM receipt WHERE outcome = 'received'")
    t.check(
        not stuck,
        f"{len(stuck)} receipt(s) left 'received', e.g. "
        + ", ".join(r["original_name"] for r in stuck[:3]),
    )
    # a version number given twice to one unit would be a doubled version too
    dup_versions = ws.q(
        "SELECT unit_code, version, COUNT(*) AS n FROM submission "
        "GROUP BY period_id, unit_code, version HAVING COUNT(*) > 1"
    )
    if dup_versions:
        t.doubled += sum(r["n"] - 1 for r in dup_versions)
        t.failures.append(f"version numbers given twice: {dup_versions[:3]}")


def _mail_key(m) -> tuple:
    return (tuple(sorted(m.rcpt)), m.subject, m.text().strip())


def count_mail(ws: Workspace, *, inflight_allowed: int = 0) -> dict[tuple, int]:
    """Messages duplicated at the SMTP sink. The same message (recipient, subject, body)
    twice is a duplicate, except up to `inflight_allowed` pairs that carry one Message-ID
    (the message in flight when a dispatch was killed after the server took it): those are
    reported as recognisable. Returns how often each message arrived."""
    groups: dict[tuple, list] = defaultdict(list)
    for m in ws.sink.received:
        groups[_mail_key(m)].append(m)
    t = ws.tally
    for key, ms in groups.items():
        if len(ms) == 1:
            continue
        ids = {str(m.message["Message-ID"] or "").strip() for m in ms}
        if len(ms) == 2 and len(ids) == 1 and "" not in ids and inflight_allowed > 0:
            inflight_allowed -= 1
            t.dup_recognisable += 1
            t.note(f"recognisable duplicate (same Message-ID) to {key[0]}: {key[1][:60]}")
        else:
            t.dup_messages += len(ms) - 1
            t.failures.append(
                f"message sent {len(ms)} times to {', '.join(key[0])}: {key[1][:70]}"
                + ("" if len(ids) == 1 else f" ({len(ids)} different Message-IDs)")
            )
    return {k: len(v) for k, v in groups.items()}


def mails_to(ws: Workspace, address: str) -> list:
    return [m for m in ws.sink.received if address in m.rcpt]


def parse_eml(path: Path):
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def outbox_counts(ws: Workspace, kind: str) -> Counter:
    return Counter(
        r["status"] for r in ws.q("SELECT status FROM outbox_message WHERE kind=:k", k=kind)
    )


# ---- servers that misbehave --------------------------------------------------------------


class HangingSMTP:
    """Accepts TCP connections on loopback and never says a word (no banner, no reply)."""

    def __init__(self, max_seconds: float = 900):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds  # it stops by itself
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections.append(conn)

    @property
    def mail_url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=baocao@localhost&mode=insecure"

    def __enter__(self) -> HangingSMTP:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for c in self.connections:
            c.close()
        self.sock.close()


def slow_sink(delay: float):
    """A MailCatcher whose server takes `delay` seconds to accept each message."""
    import asyncio

    from baocao.mailcatcher import MailCatcher, _Handler

    class SlowHandler(_Handler):
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            await asyncio.sleep(delay)
            return await super().handle_DATA(server, session, envelope)

    def make(folder: Path) -> MailCatcher:
        mc = MailCatcher(folder)
        mc.handler = SlowHandler(mc.folder)
        from aiosmtpd.controller import Controller

        mc.controller = Controller(mc.handler, hostname="127.0.0.1", port=mc.port)
        return mc

    return make


def check_rejections(ws: Workspace) -> None:
    """Each rejected version told to its unit: its rejection mail arrived (the example's
    units have one contact each), and no rejection stays unsent in the outbox."""
    t = ws.tally
    rejected = ws.q("SELECT unit_code, version FROM submission WHERE status = 'rejected'")
    mails = {_mail_key(m) for m in ws.sink.received if "chưa hợp lệ" in m.subject}
    t.check(
        len(mails) >= len(rejected),
        f"{len(rejected)} version(s) rejected but {len(mails)} distinct rejection mail(s) arrived",
    )
    unsent = ws.q(
        "SELECT status, COUNT(*) AS n FROM outbox_message WHERE kind = 'rejection' "
        "AND status <> 'sent' GROUP BY status"
    )
    t.check(not unsent, f"rejection messages not sent: {unsent}")


def unit_addresses() -> dict[str, list[str]]:
    """The e-mail addresses of the contacts of each unit of the report the suite runs (the
    bundled config's units.yaml also lists units of its other report)."""
    units = yaml.safe_load((ROOT / "config" / "units.yaml").read_text(encoding="utf-8"))["units"]
    return {
        u["code"]: [c["email"] for c in u.get("contacts", []) if "email" in c]
        for u in units
        if u["code"] in UNITS
    }


def guarded(name: str, fn, *args, **kwargs) -> Tally:
    """Run one scenario function; a bug or an unexpected error of the suite itself becomes a
    failed line named `name`, so the other scenarios still run."""
    import traceback

    started = time.monotonic()
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        t = Tally(name)
        t.failures.append(f"the scenario itself failed: {type(exc).__name__}: {exc}")
        t.note(traceback.format_exc(limit=8))
        t.seconds = time.monotonic() - started
        return t
