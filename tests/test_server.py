"""Against a real Prefect server (`prefect server start` on loopback), locked as `baocao
serve` locks it (basic auth, CORS for its own origin): `baocao serve` registers the
deployments, a custom-parameter run and the approval go through the REST API the UI uses,
anonymous calls and foreign web origins are refused, and a browser (headless Chromium) logs
in and starts a custom run from the UI itself."""

from __future__ import annotations

import base64
import os
import re
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from baocao.db import session_scope
from baocao.mailcatcher import MailCatcher, free_port
from baocao.models import RenderedReport
from baocao.prefect_server import healthy, own_origins, start_server
from baocao.runtime import build_runtime
from baocao.settings import PROJECT_ROOT, get_settings
from tasks.notify import deliver_outbox
from tests.conftest import APPROVAL_ON, edited_config, ingest_waves, open_example

pytestmark = [pytest.mark.slow, pytest.mark.integration]
AUTH = "quantri:mat-khau-thu-nghiem-dai"  # the test servers' user:password
AUTHORIZED = {"Authorization": "Basic " + base64.b64encode(AUTH.encode()).decode()}
FOREIGN = "https://evil.example"
DEPLOYMENTS = {  # flow/deployment: three per report (both bundled reports), three for the office
    "open-period/cchc-quarterly",
    "publish-report/cchc-quarterly",
    "reporting-cycle/cchc-quarterly",
    "open-period/tcd-monthly",
    "publish-report/tcd-monthly",
    "reporting-cycle/tcd-monthly",
    "send-reminders/office",
    "ingest-submissions/office",
    "publish-calendar/office",
}


def _wait(predicate, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def prefect_server(home: Path):
    """`prefect server start` with its UI on a free loopback port and its own PREFECT_HOME,
    locked with AUTH."""
    api, proc = start_server(
        free_port(), home / "server.log", auth=AUTH, env={"PREFECT_HOME": str(home)}
    )
    try:
        yield api
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server `baocao serve` registers with (module-wide)."""
    with prefect_server(tmp_path_factory.mktemp("prefect-home")) as api:
        yield api


@pytest.fixture(scope="module")
def served(server, tmp_path_factory):
    """`baocao serve` running against the server, on the example period, approval on."""
    root = tmp_path_factory.mktemp("served")
    config = edited_config(root / "config", *APPROVAL_ON)
    data = root / "data"
    rt = build_runtime(
        report_id="cchc-quarterly", settings=get_settings(data_dir=data, config_dir=config)
    )
    open_example(rt)
    ingest_waves(rt)
    with MailCatcher(root / "mail") as mail:
        # the example's requests, rejection and 14 receipts go out first, so each test sees
        # only its own mail
        sent = deliver_outbox(rt.engine, mail_url=mail.mail_url)
        assert sent == {"sent": 29, "failed": 0, "reclaimed": 0, "deferred": 0}
        env = {
            **os.environ,
            "PREFECT_API_URL": server,
            "BAOCAO_PREFECT_AUTH": AUTH,  # serve passes it on to Prefect, for itself and its runs
            "BAOCAO_DATA_DIR": str(data),
            "BAOCAO_CONFIG_DIR": str(config),
            "BAOCAO_MAIL_URL": mail.mail_url,
            "PREFECT_HOME": str(root / "client-home"),
        }
        log = (root / "serve.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--limit", "2"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
        )
        try:
            _wait(
                lambda: DEPLOYMENTS <= {d["full"] for d in _deployments(server)},
                180,
                f"deployments (log: {root / 'serve.log'})",
            )
            yield {"api": server, "rt": rt, "mail": mail, "root": root}
        finally:
            proc.terminate()
            proc.wait(30)


def _api(method: str, url: str, anonymous: bool = False, **kwargs) -> httpx.Response:
    """Call the REST API as the logged-in UI does; like Prefect's own client, retry the
    server's transient answers (SQLite busy under the scheduler's inserts gives 503 now and
    then)."""
    headers = {**({} if anonymous else AUTHORIZED), **kwargs.pop("headers", {})}
    for attempt in range(6):
        r = httpx.request(method, url, timeout=30, headers=headers, **kwargs)
        if r.status_code < 500 and r.status_code != 429:
            return r
        time.sleep(1 + attempt)
    return r


def _deployments(api: str) -> list[dict]:
    """The deployments, each with its `full` name as the UI shows it (`flow/deployment`)."""
    flows = {f["id"]: f["name"] for f in _api("POST", f"{api}/flows/filter", json={}).json()}
    deps = _api("POST", f"{api}/deployments/filter", json={}).json()
    return [{**d, "full": f"{flows.get(d['flow_id'])}/{d['name']}"} for d in deps]


def _deployment(api: str, full_name: str) -> dict:
    return next(d for d in _deployments(api) if d["full"] == full_name)


def _run(api: str, name: str, parameters: dict) -> str:
    dep = _deployment(api, name)
    r = _api(
        "POST", f"{api}/deployments/{dep['id']}/create_flow_run", json={"parameters": parameters}
    )
    assert r.status_code == 201, f"{r.status_code}: {r.text}"
    return r.json()["id"]


def _flow_run(api: str, run_id: str) -> dict:
    return _api("GET", f"{api}/flow_runs/{run_id}").json()


def _state(api: str, run_id: str) -> str:
    return _flow_run(api, run_id)["state"]["type"]


def _until(api: str, run_id: str, states: set[str], timeout: float = 180) -> str:
    return _wait(
        lambda: (s := _state(api, run_id)) in states and s, timeout, f"run {run_id} in {states}"
    )


def _resume(api: str, run_id: str, run_input: dict, anonymous: bool = False) -> httpx.Response:
    return _api(
        "POST",
        f"{api}/flow_runs/{run_id}/resume",
        anonymous=anonymous,
        json={"run_input": run_input},
    )


def _code(mail: MailCatcher, address: str) -> str:
    """The one-time code in the newest approval message `address` received."""
    for m in reversed(mail.received):
        if m.rcpt == [address] and "Mã duyệt" in m.subject:
            return re.search(r"ông/bà:\D{0,40}?(\d{6,8})", m.text()).group(1)
    raise AssertionError(f"no approval code reached {address}")


def test_anonymous_calls_and_foreign_origins_are_refused(served):
    api = served["api"]
    assert _api("POST", f"{api}/flow_runs/filter", anonymous=True, json={}).status_code == 401
    dep = _deployment(api, "open-period/cchc-quarterly")
    made = _api("POST", f"{api}/deployments/{dep['id']}/create_flow_run", anonymous=True, json={})
    assert made.status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"quantri:doan-sai-mat-khau").decode()}
    assert (
        _api("POST", f"{api}/flow_runs/filter", anonymous=True, headers=wrong, json={}).status_code
        == 401
    )
    assert _api("GET", f"{api}/health", anonymous=True).status_code == 200  # probes stay open
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    foreign = httpx.options(f"{api}/flow_runs/filter", headers={"Origin": FOREIGN, **preflight})
    assert "access-control-allow-origin" not in foreign.headers
    simple = _api("POST", f"{api}/flow_runs/filter", headers={"Origin": FOREIGN}, json={})
    assert simple.headers.get("access-control-allow-origin") in (None, "")
    own = api.removesuffix("/api")
    mine = httpx.options(f"{api}/flow_runs/filter", headers={"Origin": own, **preflight})
    assert mine.headers.get("access-control-allow-origin") == own
    assert own in own_origins(int(own.rsplit(":", 1)[1]))


def test_deployments_have_schedules_and_described_parameters(served):
    deps = {d["full"]: d for d in _deployments(served["api"])}
    for name in (
        "open-period/cchc-quarterly",
        "send-reminders/office",
        "publish-report/cchc-quarterly",
    ):
        [schedule] = deps[name]["schedules"]
        assert schedule["schedule"]["timezone"] == "Asia/Ho_Chi_Minh"
        assert "RDATE" in schedule["schedule"]["rrule"]
    assert deps["ingest-submissions/office"]["schedules"][0]["schedule"]["interval"] == 300
    publish = deps["publish-report/cchc-quarterly"]
    assert publish["parameters"]["report"] == "cchc-quarterly"  # each run names its report
    monthly = deps["open-period/tcd-monthly"]  # the other report, served by the same process
    assert monthly["parameters"]["report"] == "tcd-monthly"
    assert "RDATE" in monthly["schedules"][0]["schedule"]["rrule"]
    props = publish["parameter_openapi_schema"]["properties"]
    assert {"report", "period", "report_date", "force", "as_of"} <= set(props)
    assert "2022-Q1" in props["period"]["description"]
    stage = deps["reporting-cycle/cchc-quarterly"]["parameter_openapi_schema"]["properties"][
        "stage"
    ]
    assert "publish" in str(stage)


def test_custom_parameter_run_does_only_that(served):
    before = len(served["mail"].received)
    run = _run(
        served["api"],
        "open-period/cchc-quarterly",
        {"period": "2022-Q1", "units": ["TP"], "force": True, "as_of": "2022-03-08T09:00"},
    )
    assert _until(served["api"], run, {"COMPLETED", "FAILED", "CRASHED"}) == "COMPLETED"
    assert _flow_run(served["api"], run)["name"] == "cchc-quarterly 2022-Q1"  # says what it is
    new = served["mail"].received[before:]
    assert [m.rcpt for m in new] == [["phongtuphap@sontay.quangngai.gov.vn"]]

    def forced_logged() -> bool:  # run logs are shipped a moment after the state changes
        query = {"logs": {"flow_run_id": {"any_": [run]}}}
        logs = _api("POST", f"{served['api']}/logs/filter", json=query).json()
        return any("force=True" in entry["message"] for entry in logs)

    _wait(forced_logged, 30, "the run's log to say force=True")


def test_bad_parameter_is_refused_with_a_clear_message(served):
    run = _run(
        served["api"],
        "open-period/cchc-quarterly",
        {"period": "2022-Q9", "as_of": "2022-03-08T09:00"},
    )
    assert _until(served["api"], run, {"COMPLETED", "FAILED", "CRASHED"}) == "FAILED"
    message = _flow_run(served["api"], run)["state"]["message"]
    assert "2022-Q9" in message


def test_approval_through_the_api(served):
    """Only the approver's mailed code approves: an anonymous resume is refused outright, a
    logged-in one with a made-up code is accepted as input but approves nothing."""
    api, mail = served["api"], served["mail"]
    before = len(mail.received)
    run = _run(
        api,
        "publish-report/cchc-quarterly",
        {"period": "2022-Q1", "report_date": "2022-04-05", "as_of": "2022-04-05T09:00"},
    )
    assert _until(api, run, {"PAUSED", "FAILED", "CRASHED", "COMPLETED"}) == "PAUSED"
    codes = mail.received[before:]  # only the approvers' codes leave before the decision
    assert sorted(m.rcpt[0] for m in codes) == [
        "chanhvanphong@sontay.quangngai.gov.vn",
        "chutich@sontay.quangngai.gov.vn",
    ]
    anyone = {"approver": "chu-tich", "code": "123456", "decision": "approve", "number": "25"}
    assert _resume(api, run, anyone, anonymous=True).status_code == 401
    assert _state(api, run) == "PAUSED"
    answer = _resume(api, run, anyone).json()
    assert answer["status"] == "ACCEPT", answer
    # the run checks the code, logs the refusal and pauses again for another try
    _wait(lambda: _state(api, run) == "PAUSED", 60, "the run to ask again")
    with session_scope(served["rt"].engine) as s:
        [row] = s.query(RenderedReport).all()
        assert row.status == "draft"
    assert len(mail.received) == before + 2
    code = _code(mail, "chutich@sontay.quangngai.gov.vn")
    answer = _resume(
        api,
        run,
        {
            "approver": "chu-tich",
            "code": code,
            "decision": "approve",
            "comment": "Đồng ý",
            "number": "25",
        },
    ).json()
    assert answer["status"] == "ACCEPT", answer
    assert _until(api, run, {"COMPLETED", "FAILED", "CRASHED"}) == "COMPLETED"
    assert len(mail.received) - before == 2 + 6
    with session_scope(served["rt"].engine) as s:
        [row] = s.query(RenderedReport).all()
        assert (row.status, row.decided_by) == ("approved", "Nguyễn Ngọc Trân")

    def refusal_logged() -> bool:
        query = {"logs": {"flow_run_id": {"any_": [run]}}}
        logs = _api("POST", f"{api}/logs/filter", json=query).json()
        return any("mã không đúng" in entry["message"] for entry in logs)

    _wait(refusal_logged, 30, "the run's log to name the wrong code")


@pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists() and not os.environ.get("CI"),
    reason="Debian chromium not installed (CI installs it)",
)
def test_browser_custom_run_from_the_ui(served, tmp_path):
    """An administrator reruns publish-report from the UI with a period typed in the form."""
    from playwright.sync_api import sync_playwright

    api = served["api"]
    ui = api.removesuffix("/api")
    dep = _deployment(api, "publish-report/cchc-quarterly")
    known = {r["id"] for r in _api("POST", f"{api}/flow_runs/filter", json={}).json()}
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page()
        try:
            target = f"{ui}/deployments/deployment/{dep['id']}"
            page.goto(target, wait_until="networkidle")
            login = page.locator("input[type=password]")  # the locked UI asks first
            login.wait_for(timeout=30_000)
            login.fill(AUTH)
            page.get_by_role("button", name="Login").click()
            page.wait_for_function("() => !!localStorage.getItem('prefect-password')")
            page.goto(target, wait_until="networkidle")
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_text("Custom run", exact=True).click()
            page.wait_for_url("**/run?**", timeout=30_000)
            page.locator(_field("period")).fill("2022-Q1")
            page.locator(_field("as_of")).fill("2022-04-06T09:00")
            page.get_by_role("button", name="Submit").click()
            page.wait_for_url("**tab=Runs**", timeout=30_000)
        except Exception:
            page.screenshot(path=str(served["root"] / "ui-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    runs = _api("POST", f"{api}/flow_runs/filter", json={}).json()
    [new] = [r for r in runs if r["id"] not in known]
    assert new["deployment_id"] == dep["id"] and new["parameters"]["period"] == "2022-Q1"
    state = _until(api, new["id"], {"COMPLETED", "FAILED", "CRASHED", "PAUSED"})
    if state == "PAUSED":  # this test alone: nobody approved version 1 yet
        code = _code(served["mail"], "chutich@sontay.quangngai.gov.vn")
        _resume(
            api,
            new["id"],
            {"approver": "chu-tich", "code": code, "decision": "approve", "number": "26"},
        )
        state = _until(api, new["id"], {"COMPLETED", "FAILED", "CRASHED"})
    assert state == "COMPLETED"


def _field(name: str) -> str:
    """The text box under a parameter's label in the UI's custom-run form."""
    return f"xpath=//*[normalize-space(text())='{name} (Optional)']/following::textarea[1]"


def test_serve_starts_its_own_locked_server_and_keeps_its_password(tmp_path):
    """No server and no password set: `baocao serve` starts one, locked with a generated
    password saved owner-only in the data folder, prints where (never the password), and a
    restart reuses it."""
    port, data = free_port(), tmp_path / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "BAOCAO_PREFECT_AUTH")
    }
    env.update(BAOCAO_DATA_DIR=str(data), PREFECT_HOME=str(tmp_path / "home"), COLUMNS="200")
    command = [sys.executable, "-m", "app.cli", "serve", "--register-only", "--port", str(port)]

    def serve() -> str:
        done = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    first = serve()
    pid = int(re.search(r"pid\s+(\d+)", first).group(1))
    try:
        path = data / "prefect-auth"
        auth = path.read_text(encoding="utf-8").strip()
        user, _, password = auth.partition(":")
        assert user == "baocao" and len(password) >= 24
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert str(path) in first and "baocao" in first and password not in first
        api = f"http://127.0.0.1:{port}/api"
        headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
        flows = {
            f["id"]: f["name"]
            for f in httpx.post(f"{api}/flows/filter", json={}, headers=headers).json()
        }
        names = {
            f"{flows[d['flow_id']]}/{d['name']}"
            for d in httpx.post(f"{api}/deployments/filter", json={}, headers=headers).json()
        }
        assert DEPLOYMENTS <= names  # registered on its own server, logged in
        assert httpx.post(f"{api}/deployments/filter", json={}).status_code == 401
        ui_settings = httpx.get(f"http://127.0.0.1:{port}/ui-settings").json()
        assert ui_settings["auth"] == "BASIC"
        again = serve()  # the server still runs: the saved password logs in again
        assert "vừa tạo" not in again and path.read_text(encoding="utf-8").strip() == auth
    finally:
        os.kill(pid, signal.SIGTERM)


def test_an_open_server_is_refused(tmp_path):
    """`baocao serve` does not register with a server that answers anyone."""
    port = free_port()
    home = tmp_path / "home"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_SERVER_API_AUTH_STRING", None)
    log = (tmp_path / "open.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        api = f"http://127.0.0.1:{port}/api"
        _wait(lambda: healthy(api), 180, "the open server")
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "serve", "--register-only"],
            env={
                **env,
                "PREFECT_API_URL": api,
                "BAOCAO_PREFECT_AUTH": AUTH,
                "BAOCAO_DATA_DIR": str(tmp_path / "data"),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert "không khóa" in done.stderr and "Traceback" not in done.stderr
    finally:
        proc.terminate()
        proc.wait(30)


def test_prefect_yaml_deploys_to_a_work_pool_and_a_worker_runs_it(tmp_path):
    """The province's path: `prefect deploy --all` from prefect.yaml, a process worker, then
    two named workers taking one run each. A server of its own: on the shared one, `baocao
    serve` would pick the runs up first."""
    home = tmp_path / "server-home"
    home.mkdir()
    with prefect_server(home) as server:
        _deploy_and_work(server, tmp_path)


def _deploy_and_work(server: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    rt = build_runtime(
        report_id="cchc-quarterly",
        settings=get_settings(data_dir=data, config_dir=PROJECT_ROOT / "config"),
    )
    open_example(rt)
    with MailCatcher(tmp_path / "mail") as mail:
        env = {
            **os.environ,
            "PREFECT_API_URL": server,
            "PREFECT_API_AUTH_STRING": AUTH,  # prefect's own CLI and the worker log in
            "PREFECT_HOME": str(tmp_path / "home"),
            "BAOCAO_HOME": str(PROJECT_ROOT),
            "BAOCAO_DATA_DIR": str(data),
            "BAOCAO_MAIL_URL": mail.mail_url,
        }
        prefect = [sys.executable, "-m", "prefect"]

        def cli(*args: str) -> str:
            done = subprocess.run(
                [*prefect, *args],
                env=env,
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        cli("work-pool", "create", "baocao", "--type", "process", "--overwrite")
        cli("--no-prompt", "deploy", "--all")
        deps = {d["name"]: d for d in _deployments(server) if d.get("work_pool_name") == "baocao"}
        assert {
            "open-period",
            "send-reminders",
            "ingest-submissions",
            "publish-report",
            "reporting-cycle",
            "publish-calendar",
        } <= set(deps)
        assert deps["reporting-cycle"]["schedules"][0]["schedule"]["timezone"] == "Asia/Ho_Chi_Minh"
        run = _api(
            "POST",
            f"{server}/deployments/{deps['send-reminders']['id']}/create_flow_run",
            json={
                "parameters": {
                    "report": "cchc-quarterly",
                    "period": "2022-Q1",
                    "units": ["VHTT"],
                    "as_of": "2022-03-15T08:00",
                }
            },
        ).json()["id"]
        cli("worker", "start", "--pool", "baocao", "--type", "process", "--run-once")
        assert _until(server, run, {"COMPLETED", "FAILED", "CRASHED"}) == "COMPLETED"
        assert [m.rcpt for m in mail.received] == [["phongvhtt@sontay.quangngai.gov.vn"]]
        assert "còn 1 ngày làm việc" in mail.received[0].subject
        # two workers of the pool, one after the other, one run each: a worker labels the
        # run it claims with its name (what `make bench-server` reports), and the reminder
        # already sent is not sent again, whichever worker runs it
        same = f"{server}/deployments/{deps['send-reminders']['id']}/create_flow_run"
        params = {"parameters": _flow_run(server, run)["parameters"]}
        runs = [_api("POST", same, json=params).json()["id"] for _ in range(2)]
        for name in ("worker-1", "worker-2"):
            worker = ["--pool", "baocao", "--type", "process", "--name", name]
            cli("worker", "start", *worker, "--limit", "1", "--run-once")  # leaves one run
        for r in runs:
            assert _until(server, r, {"COMPLETED", "FAILED", "CRASHED"}) == "COMPLETED"
        workers = [_flow_run(server, r)["labels"].get("prefect.worker.name") for r in runs]
        assert sorted(workers) == ["worker-1", "worker-2"]
        assert len(mail.received) == 1
