"""Who may reach in: the Prefect server that baocao starts, a config folder from elsewhere, a
template that tries to run a command, and an approval by someone without the approver's code.

- `baocao.prefect_server.start_server` (what `baocao serve` runs): an anonymous POST to its API gets
  401, and a foreign web origin gets no CORS permission;
- `baocao open --config DIR` with DIR outside the allowed folders: refused in one line,
  nothing sent;
- a config folder (allowed through BAOCAO_ALLOWED_CONFIG_DIRS) whose
  templates/messages/request.j2 would `touch` a marker: the marker never appears;
- approval on: after publish renders the draft, `baocao approve` without the approver's
  one-time code (or with a guessed one) is refused, and publish sends nothing.
"""

from __future__ import annotations

import inspect
import secrets
import shutil
import time
from pathlib import Path

import httpx

from reliability.harness import (
    FIGURES,
    OPEN_AT,
    PERIOD,
    PUBLISH_ARGS,
    ROOT,
    UNITS,
    Suite,
    Tally,
    Workspace,
    free_port,
    guarded,
)
from reliability.returns import fillers

EVIL_ORIGIN = "http://evil.example"
PAYLOADS = [
    "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}"
    "{{ c(['touch', 'MARKER']) }}{% endif %}{% endfor %}",
]


def run(suite: Suite) -> list[Tally]:
    return [
        guarded("access: Prefect API without credentials", prefect_api, suite),
        guarded("access: config folder outside the allowed ones", foreign_config, suite),
        guarded("access: template that runs a command", template, suite),
        guarded("access: approval without the approver's code", approval, suite),
    ]


def start_locked_server(port: int, log: Path, env: dict[str, str]):
    """`baocao.prefect_server.start_server` as `baocao serve` calls it, with a password when the
    function takes one (returns api, process, the user:password or None)."""
    from baocao.prefect_server import start_server

    if "auth" in inspect.signature(start_server).parameters:
        auth = f"baocao:{secrets.token_urlsafe(16)}"
        api, proc = start_server(port, log, auth=auth, env=env)
        return api, proc, auth
    api, proc = start_server(port, log, env=env)
    return api, proc, None


def prefect_api(suite: Suite) -> Tally:
    t = Tally("access: Prefect API without credentials")
    started = time.monotonic()
    port = free_port()
    folder = suite.root / "access-server"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        api, proc, auth = start_locked_server(
            port, folder / "server.log", {"PREFECT_HOME": str(folder / "prefect")}
        )
    except Exception as exc:  # the start itself failing is the finding
        t.failures.append(f"start_server failed: {type(exc).__name__}: {exc}")
        return t
    try:
        for path, body in (
            ("/flow_runs/filter", {"limit": 1}),
            ("/deployments/filter", {"limit": 1}),
            (f"/flow_runs/{'0' * 8}-0000-0000-0000-{'0' * 12}/resume", {"run_input": {}}),
        ):
            code = _status("POST", api + path, json=body)
            t.check(code == 401, f"anonymous POST {path}: HTTP {code}")
        try:
            pre = httpx.options(
                api + "/flow_runs/filter",
                headers={"Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "POST"},
                timeout=20,
            )
            allowed = pre.headers.get("access-control-allow-origin", "")
        except httpx.HTTPError as exc:
            allowed = f"(no answer: {type(exc).__name__})"
        t.check(
            allowed not in ("*", EVIL_ORIGIN),
            f"CORS allows origin {EVIL_ORIGIN!r} (access-control-allow-origin: {allowed!r})",
        )
        if auth:
            user, _, password = auth.partition(":")
            code = _status(
                "POST", api + "/flow_runs/filter", json={"limit": 1}, auth=(user, password)
            )
            t.check(code == 200, f"with the password: HTTP {code}")
        else:
            t.failures.append("start_server takes no password: the server it starts is open")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except Exception:
            proc.kill()
    t.seconds = time.monotonic() - started
    return t


def _status(method: str, url: str, **kw) -> int | str:
    """HTTP status of one request on a fresh connection (a few tries past a reset)."""
    last = ""
    for attempt in range(3):
        try:
            return httpx.request(method, url, timeout=20, **kw).status_code
        except httpx.HTTPError as exc:
            last = f"no answer ({type(exc).__name__})"
            time.sleep(1 + attempt)
    return last


def _foreign(folder: Path, marker: Path | None = None) -> Path:
    """A copy of the bundled config (with its own templates/ when a marker is given)."""
    shutil.copytree(ROOT / "config", folder)
    if marker is not None:
        shutil.copytree(ROOT / "templates", folder / "templates")
        payload = "\n".join(p.replace("MARKER", str(marker)) for p in PAYLOADS)
        (folder / "templates" / "messages" / "request.j2").write_text(
            '{% extends "messages/_layout.j2" %}\n'
            "{% block subject %}Đề nghị báo cáo {{ period.label }}{% endblock %}\n"
            "{% block text %}\n" + payload + "\n{% endblock %}\n",
            encoding="utf-8",
        )
    return folder


def foreign_config(suite: Suite) -> Tally:
    t = Tally("access: config folder outside the allowed ones")
    started = time.monotonic()
    with Workspace(suite, "access-foreign", t) as ws:
        foreign = _foreign(ws.dir / "elsewhere" / "config")
        run_ = ws.cli("open", PERIOD, "--as-of", OPEN_AT, "--config", str(foreign))
        t.check(run_.rc not in (0, None), f"`baocao open --config {foreign}` was accepted")
        lines = run_.user_lines()
        t.check(len(lines) in (1, 2), f"refusal in {len(lines)} line(s): {lines[:3]}")
        if lines:
            t.note(f"said: {lines[0][:160]}")
        t.check(not ws.sink.received, f"{len(ws.sink.received)} message(s) sent")
    t.seconds = time.monotonic() - started
    return t


def template(suite: Suite) -> Tally:
    t = Tally("access: template that runs a command (allowed folder)")
    started = time.monotonic()
    with Workspace(suite, "access-template", t) as ws:
        marker = ws.dir / "pwned"
        district = _foreign(ws.dir / "districts" / "ba-to", marker)
        ws.env_extra["BAOCAO_ALLOWED_CONFIG_DIRS"] = str(district.parent)
        run_ = ws.cli("open", PERIOD, "--as-of", OPEN_AT, "--config", str(district))
        t.check(not marker.exists(), "the template ran `touch`: the marker file exists")
        lines = run_.user_lines()
        if run_.rc not in (0, None):
            t.check(len(lines) in (1, 2), f"refusal in {len(lines)} line(s): {lines[:3]}")
        t.note(f"exit {run_.rc}: {(lines or [''])[0][:160]}")
        leaked = [m for m in ws.sink.received if "subclasses" in m.text() or "Popen" in m.text()]
        t.check(not leaked, f"{len(leaked)} message(s) carry Python internals")
    t.seconds = time.monotonic() - started
    return t


def approval(suite: Suite) -> Tally:
    """With approval on, someone without the approver's code tries to approve."""
    t = Tally("access: approval without the approver's one-time code")
    started = time.monotonic()
    with Workspace(suite, "access-approval", t, ephemeral_prefect=True) as ws:
        cfg = _foreign(ws.dir / "config")
        schedule = cfg / "schedule.yaml"
        text = schedule.read_text(encoding="utf-8")
        schedule.write_text(
            text.replace("approval_required: false", "approval_required: true"), encoding="utf-8"
        )
        ws.env_extra["BAOCAO_CONFIG_DIR"] = str(cfg)  # the district's own config
        ws.open_period()
        fill = fillers(ws.tokens())
        for u in UNITS:
            ws.put(f"{u}_{PERIOD}.xlsx", fill[u].fill(FIGURES[u]))
        t.files_tried = len(UNITS)
        ws.ingest()
        draft = ws.cli(*PUBLISH_ARGS)
        t.check(draft.rc == 0, f"publish (draft) ended with exit {draft.rc}")
        reports = ws.q("SELECT id, status FROM rendered_report")
        if not t.check(bool(reports), "publish rendered no draft"):
            return t
        for args in (
            ["approve", PERIOD, "--by", "Người lạ"],
            ["approve", PERIOD, "--by", "chu-tich", "--code", "123456"],
        ):
            who = ws.cli(*args)
            t.check(who.rc not in (0, None), f"`baocao {' '.join(args)}` was accepted")
        status = ws.q("SELECT status FROM rendered_report ORDER BY id DESC")[0]["status"]
        t.check(status == "draft", f"the draft is now {status!r}")
        again = ws.cli(*PUBLISH_ARGS)
        t.check(again.rc == 0, f"publish after the attempts ended with exit {again.rc}")
        sent = ws.q("SELECT COUNT(*) AS n FROM outbox_message WHERE kind = 'report'")[0]["n"]
        t.check(sent == 0, f"the report was queued to {sent} recipient(s) without approval")
    t.seconds = time.monotonic() - started
    return t
