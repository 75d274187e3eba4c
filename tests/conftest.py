"""Shared fixtures: the Sơn Tây Quý I/2022 example taken in, once, in a temporary store."""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from baocao import crud
from baocao.db import session_scope
from baocao.models import Submission
from baocao.periods import Period, parse_moment
from baocao.returns import as_returned, example_unit
from baocao.runtime import Runtime, build_runtime
from baocao.settings import PROJECT_ROOT, get_settings
from tasks.collect import open_period
from tasks.intake import IntakeResult, ingest_files

EXAMPLE = PROJECT_ROOT / "examples" / "son-tay-2022-q1"
SUBMISSIONS = EXAMPLE / "submissions"
MANIFEST = yaml.safe_load((EXAMPLE / "manifest.yaml").read_text(encoding="utf-8"))
PERIOD = Period.parse(str(MANIFEST["period"]))
REPORT = str(MANIFEST["report"])  # the bundled config has two reports: tests name theirs


def make_runtime(data_dir: Path, report: str | None = REPORT) -> Runtime:
    """A runtime about `report` (None: every report) on the bundled config, with its own
    SQLite store and archive in data_dir."""
    return build_runtime(
        report_id=report,
        settings=get_settings(data_dir=data_dir, config_dir=PROJECT_ROOT / "config"),
    )


def edited_config(folder: Path, file: str, old: str, new: str) -> Path:
    """A copy of the bundled config in `folder` with one text edit in `file`."""
    shutil.copytree(PROJECT_ROOT / "config", folder)
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {file}; the bundled config changed"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


# approval is on in the bundled config (issue 8); kept for the tests that name it
APPROVAL_ON = ("schedule.yaml", "approval_required: true", "approval_required: true")
APPROVAL_OFF = ("schedule.yaml", "approval_required: true", "approval_required: false")


def open_example(rt: Runtime) -> dict:
    return open_period(rt, period=PERIOD, units=None, now=parse_moment(str(MANIFEST["open_at"])))


def request_tokens(rt: Runtime, period: Period = PERIOD) -> dict[str, str]:
    """Unit code -> the form code of its request for the period."""
    with session_scope(rt.engine) as s:
        row = crud.get_period(s, report_id=rt.report.id, code=period.code)
        return {u: r.token for u, r in crud.requests_for(s, period_id=row.id).items()}


def returned(rt: Runtime, names: list[str], period: Period = PERIOD) -> list[Path]:
    """The example files as their units send them back: each with its request's form code
    (written beside the data folder, under the same names)."""
    tokens = request_tokens(rt, period)
    folder = rt.settings.data_dir.parent / "returned"
    return [
        folder / n  # made once: the same file sent again is the same bytes
        if (folder / n).exists()
        else as_returned(SUBMISSIONS / n, folder / n, tokens, example_unit(SUBMISSIONS / n))
        for n in names
    ]


def ingest_waves(rt: Runtime) -> list[IntakeResult]:
    """Every arrival wave of the manifest, in order, each at its own time."""
    results: list[IntakeResult] = []
    for wave in MANIFEST["arrivals"]:
        paths = returned(rt, wave["files"])
        results += ingest_files(rt, paths, now=parse_moment(str(wave["at"])))
    return results


def concurrent_intake(settings, tmp_path):
    """Two runs take in copies of the same returned files at the same moment."""
    import threading

    from tasks.intake import ingest_files

    rt = build_runtime(report_id=REPORT, settings=settings)
    open_example(rt)
    names = [n for wave in MANIFEST["arrivals"][:2] for n in wave["files"]]
    files = returned(rt, names)
    copies = []
    for f in files:
        copy = tmp_path / "copies" / f"copy of {f.name}"
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(f.read_bytes())
        copies.append(copy)
    now = parse_moment("2022-03-14T17:00")
    barrier, results, errors = threading.Barrier(2), {}, []

    def run(label, paths):
        try:
            barrier.wait()
            results[label] = ingest_files(rt, paths, now=now)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("a", files)),
        threading.Thread(target=run, args=("b", copies)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with session_scope(rt.engine) as s:
        subs = list(s.exec(select(Submission.unit_code, Submission.version, Submission.sha256)))
    rt.engine.dispose()
    return subs, results


@pytest.fixture(scope="session")
def example_runtime(tmp_path_factory) -> Runtime:
    """The example period opened and every wave taken in. Shared: tests must not add to it."""
    rt = make_runtime(tmp_path_factory.mktemp("example") / "data")
    open_example(rt)
    ingest_waves(rt)
    return rt


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory):
    """No test writes into the clone's ./data or talks to a Prefect server of the developer's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BAOCAO_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # tests hand flows config folders they copied into pytest's temporary folders
    mp.setenv("BAOCAO_ALLOWED_CONFIG_DIRS", str(tmp_path_factory.getbasetemp()))
    for key in (
        "BAOCAO_DATABASE_URL",
        "BAOCAO_CONFIG_DIR",
        "BAOCAO_INBOX_DIR",
        "BAOCAO_MAIL_URL",
        "BAOCAO_IMAP_URL",
        "BAOCAO_IMAP_PASSWORD",
        "BAOCAO_PREFECT_AUTH",
        "PREFECT_API_AUTH_STRING",
        "PREFECT_SERVER_API_AUTH_STRING",
    ):
        mp.delenv(key, raising=False)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def prefect_harness():
    """One real Prefect API (temporary SQLite, server subprocess) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


class ZaloStub:
    """A stand-in for the Zalo Official Account API on loopback: records each request and
    answers with `answer` (set it to an error to see the outbox keep the message)."""

    def __init__(self):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.seen: list[tuple[str, str, dict]] = []
        self.answer: dict = {"error": 0, "message": "Success", "data": {"message_id": "m1"}}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers["Content-Length"])
                stub.seen.append(
                    (self.path, self.headers["access_token"], json.loads(self.rfile.read(length)))
                )
                body = json.dumps(stub.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def zalo_api(monkeypatch):
    stub = ZaloStub()
    monkeypatch.setenv("BAOCAO_ZALO_API_URL", stub.url)
    monkeypatch.setenv("BAOCAO_ZALO_ACCESS_TOKEN", "tok-123")
    yield stub
    stub.server.shutdown()


@pytest.fixture(scope="session")
def imap_server():
    """A real IMAP server for the session: Dovecot (Debian's dovecot-imapd) on loopback, with
    its own config, base_dir and Maildir under a temporary folder; stopped at the end."""
    from baocao.imapserver import LoopbackImap, dovecot_binary

    if dovecot_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("dovecot is not installed; .ci/run installs dovecot-imapd")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    with LoopbackImap() as server:
        yield server


class TestMailbox:
    """One empty mailbox of its own on the session's Dovecot: a user nobody else uses."""

    __test__ = False  # not a test class for pytest
    _made = itertools.count(1)

    def __init__(self, server):
        self.server = server
        self.user = f"office{next(self._made)}"
        self.password = secrets.token_urlsafe(12)
        server.add_user(self.user, self.password)
        self.url = server.url_for(self.user)

    def deliver(self, message, folder: str = "INBOX") -> None:
        self.server.deliver(message, folder=folder, user=self.user, password=self.password)

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        return self.server.messages(folder, user=self.user, password=self.password)

    def settings(self, data_dir: Path, **more):
        """Settings of a store in data_dir reading this mailbox."""
        return get_settings(
            data_dir=data_dir,
            config_dir=PROJECT_ROOT / "config",
            imap_url=self.url,
            imap_password=self.password,
            **more,
        )


@pytest.fixture
def mailbox(imap_server) -> TestMailbox:
    return TestMailbox(imap_server)


@pytest.fixture
def one_report_config(tmp_path_factory, monkeypatch) -> Path:
    """The bundled config with only the CCHC report, as BAOCAO_CONFIG_DIR: an office with one
    report, where no verb needs `--report` (tests/test_cli.py; with several reports a verb
    about one asks which, see `_two_reports` there)."""
    folder = tmp_path_factory.mktemp("one-report") / "config"
    shutil.copytree(PROJECT_ROOT / "config", folder)
    (folder / "reports" / "tcd-monthly.yaml").unlink()
    monkeypatch.setenv("BAOCAO_CONFIG_DIR", str(folder))
    return folder
