"""The Prefect server `baocao serve` talks to: the one PREFECT_API_URL names, one already
answering on 127.0.0.1:4200, or one started here with its UI (app/serve.py registers the
deployments on it).

Prefect's temporary server (what runs when PREFECT_API_URL is unset) has no UI, so this
starts `prefect server start` on 127.0.0.1:4200 unless PREFECT_API_URL names a server or
one already answers there.

The server it starts is locked: basic authentication (`server.api.auth_string`) and CORS
for its own origin only. The password comes from the environment (BAOCAO_PREFECT_AUTH, or
Prefect's PREFECT_API_AUTH_STRING / PREFECT_SERVER_API_AUTH_STRING, as `user:password`),
never from config/ or the database. With none set, one is generated on the first start and
kept in `<data>/prefect-auth` (mode 0600, user `baocao`), so restarts reuse it. A server
that answers anonymous requests is refused: whoever reaches it could start runs.
"""

from __future__ import annotations

import atexit
import base64
import os
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from baocao.errors import ServerError
from baocao.settings import Settings

DEFAULT_PORT = 4200
DEFAULT_API = f"http://127.0.0.1:{DEFAULT_PORT}/api"
AUTH_USER = "baocao"
AUTH_FILE = "prefect-auth"
MIN_PASSWORD = 12
PREFECT_VARIABLES = ("PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING")


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class ServerAuth:
    """The `user:password` of the Prefect server's basic auth, and where it came from."""

    value: str
    source: str  # an environment variable's name, or the file it is kept in
    path: Path | None = None  # the file, when it came from one
    created: bool = False

    @property
    def user(self) -> str:
        return self.value.partition(":")[0]

    @property
    def header(self) -> dict[str, str]:
        token = base64.b64encode(self.value.encode("utf-8")).decode("ascii")
        return {"Authorization": f"Basic {token}"}


def _checked(value: str, source: str) -> str:
    value = value.strip()
    user, sep, password = value.partition(":")
    if not sep or not user or len(password) < MIN_PASSWORD:
        raise ServerError(
            f"{source}: cần dạng tên:mật-khẩu, mật khẩu ít nhất {MIN_PASSWORD} ký tự / "
            f"expected user:password with a password of {MIN_PASSWORD}+ characters"
        )
    return value


def auth_file(settings: Settings) -> Path:
    return settings.data_dir / AUTH_FILE


def find_auth(settings: Settings) -> ServerAuth | None:
    """The server's credentials: from the environment (BAOCAO_PREFECT_AUTH, then Prefect's
    own variables), else the file a first start saved in the data folder."""
    if settings.prefect_auth is not None and settings.prefect_auth.get_secret_value().strip():
        value = settings.prefect_auth.get_secret_value()
        return ServerAuth(_checked(value, "BAOCAO_PREFECT_AUTH"), "BAOCAO_PREFECT_AUTH")
    for name in PREFECT_VARIABLES:
        if os.environ.get(name, "").strip():
            return ServerAuth(_checked(os.environ[name], name), name)
    path = auth_file(settings)
    if not path.is_file():
        return None
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ServerError(
            f"{path}: người khác đọc được mật khẩu máy chủ Prefect; chạy `chmod 600 {path}` / "
            "the password file must be readable by its owner only"
        )
    return ServerAuth(_checked(path.read_text(encoding="utf-8"), str(path)), str(path), path)


def ensure_auth(settings: Settings) -> ServerAuth:
    """`find_auth`, or a new strong password for user `baocao`, saved with mode 0600."""
    found = find_auth(settings)
    if found:
        return found
    path = auth_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = f"{AUTH_USER}:{secrets.token_urlsafe(24)}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another start wrote it a moment ago
        return find_auth(settings)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return ServerAuth(value, str(path), path, created=True)


def own_origins(port: int) -> str:
    """The only web origins the API answers cross-origin: the server's own UI."""
    return f"http://127.0.0.1:{port},http://localhost:{port}"


def locked_env(auth: str, port: int) -> dict[str, str]:
    """What `prefect server start` needs to be locked: basic auth and CORS for itself."""
    return {
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_API_AUTH_STRING": auth,  # the server's own client calls
        "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": own_origins(port),
    }


def start_server(
    port: int,
    log_file: Path,
    *,
    auth: str,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> tuple[str, subprocess.Popen]:
    """`prefect server start` with its UI on 127.0.0.1:`port`, locked with `auth`
    (`user:password`), once it answers healthy and refuses anonymous requests."""
    api = f"http://127.0.0.1:{port}/api"
    run_env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_UI_API_URL": api,
        **(env or {}),
        **locked_env(_checked(auth, "auth"), port),
    }
    run_env.pop("PREFECT_API_URL", None)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
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
            env=run_env,
        )
    why = _await_health(api, proc, timeout, step=1)
    if why:
        raise ServerError(f"prefect server {why}; see {log_file}")
    try:
        check_access(api, ServerAuth(auth, "auth"))
    except ServerError:
        proc.terminate()
        raise
    return api, proc


def _await_health(api: str, proc: subprocess.Popen, timeout: float, step: float) -> str:
    """Wait until the server `proc` started answers healthy at `api`: "" then, else why not
    (it stopped, or it timed out and is stopped here)."""
    deadline = time.monotonic() + timeout
    while not healthy(api):
        if proc.poll() is not None:
            return f"stopped (exit {proc.returncode})"
        if time.monotonic() > deadline:
            _stop(proc)
            return f"not healthy after {timeout:.0f} s"
        time.sleep(step)
    return ""


def _probe(api: str, headers: dict[str, str]) -> int:
    """Status of a harmless authenticated call (read one flow run), past transient 5xx."""
    for attempt in range(5):
        try:
            r = httpx.post(
                f"{api}/flow_runs/filter", json={"limit": 1}, headers=headers, timeout=10
            )
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code < 500:
            return r.status_code
        time.sleep(1 + attempt)
    raise ServerError(f"máy chủ Prefect tại {api} không trả lời / the server does not answer")


def check_access(api: str, auth: ServerAuth | None) -> None:
    """The server refuses anonymous requests and accepts `auth`; else one clear error."""
    if _probe(api, {}) != 401:
        raise ServerError(
            f"máy chủ Prefect tại {api} không khóa: ai truy cập được cũng chạy và duyệt được; "
            "dừng nó để `baocao serve` tự khởi động máy chủ có mật khẩu, hoặc khởi động nó với "
            "PREFECT_SERVER_API_AUTH_STRING / the server accepts anonymous requests"
        )
    if auth is None:
        if os.environ.get("PREFECT_API_KEY"):  # Prefect Cloud: its key, not basic auth
            return
        raise ServerError(
            f"máy chủ Prefect tại {api} yêu cầu đăng nhập: đặt BAOCAO_PREFECT_AUTH=tên:mật-khẩu "
            "(hoặc PREFECT_API_AUTH_STRING) / the server needs its user:password"
        )
    if _probe(api, auth.header) == 401:
        raise ServerError(
            f"máy chủ Prefect tại {api} từ chối mật khẩu lấy từ {auth.source}; kiểm tra "
            "BAOCAO_PREFECT_AUTH / the server refused the password"
        )


def ensure_server(
    log_file: Path, settings: Settings, port: int = DEFAULT_PORT
) -> tuple[str, subprocess.Popen | None, ServerAuth | None]:
    """The API URL to use and its credentials: PREFECT_API_URL's server, one already on
    127.0.0.1:`port`, or one started there now, locked (then also returned, for the caller
    to stop). A server that accepts anonymous requests is refused."""
    api = os.environ.get("PREFECT_API_URL") or f"http://127.0.0.1:{port}/api"
    if healthy(api):
        auth = find_auth(settings)
        check_access(api, auth)
        return api, None, auth
    if os.environ.get("PREFECT_API_URL"):
        raise ServerError(
            f"PREFECT_API_URL={api} does not answer: start that server or unset the variable"
        )
    auth = ensure_auth(settings)
    api, proc = start_server(port, log_file, auth=auth.value)
    return api, proc, auth


def use_server(api: str, auth: ServerAuth | None) -> None:
    """Make this process (and the runs it starts) talk to `api` with `auth`. Prefect reads
    its settings when imported, so they are read again here."""
    os.environ["PREFECT_API_URL"] = api
    if auth is not None:
        os.environ["PREFECT_API_AUTH_STRING"] = auth.value
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


def quiet_local_runs() -> bool:
    """With no Prefect API configured (PREFECT_API_URL unset, in the environment and the
    profile), flows run on a temporary local server (the demo, the command line, tests) that
    lives no longer than this process: no flow-run heartbeat then. It only lets a real
    server spot crashed runs, and its thread, joined at each run's end, costs up to a second
    a run. Returns whether it was turned off; `use_server` reads the settings again, so a
    real server (`baocao serve`, workers) keeps the heartbeat as configured."""
    import prefect.context
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    )

    root = prefect.context.GLOBAL_SETTINGS_CONTEXT
    if root.settings.api.url or root.settings.flows.heartbeat_frequency is None:
        return False
    # from code only: the environment variable cannot say "none" (it must be an int ≥ 30);
    # and, unless set, 60 s rather than 20 for the temporary server to start (a first start
    # creates its database, and took over 20 s on a busy 2-core machine)
    _update_settings(
        {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None},
        defaults={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 60},
    )
    return True


def _update_settings(updates: dict, defaults: dict | None = None) -> None:
    """This process's Prefect settings with `updates` (and `defaults` where unset), the rest
    as they are: from code, for this process only (its environment is left alone)."""
    import prefect.context

    root = prefect.context.GLOBAL_SETTINGS_CONTEXT
    settings = root.settings.copy_with_update(updates=updates, set_defaults=defaults or {})
    prefect.context.GLOBAL_SETTINGS_CONTEXT = root.model_copy(update={"settings": settings})


def warm_local_server() -> Callable[[], None]:
    """When runs would go to Prefect's temporary local server (no PREFECT_API_URL), start that
    server now, in the background, so its boot (seconds: a process importing the whole
    server) overlaps the caller's own set-up. Returns what to call before the first flow
    run: it waits until the server answers and points this process's runs at it. Anywhere
    else nothing is started and the waiting is nothing.

    The server is started the way Prefect starts its temporary one (`SubprocessASGIServer`:
    uvicorn serving `create_app`, no UI, ephemeral, in PREFECT_HOME's database) but by us,
    so this process never imports `prefect.server` (3 s of CPU, a fifth of the demo); it
    stops when this process exits, and runs keep going without the heartbeat."""
    import prefect.context
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        get_current_settings,
    )

    quiet_local_runs()
    if prefect.context.GLOBAL_SETTINGS_CONTEXT.settings.api.url or not (
        PREFECT_SERVER_EPHEMERAL_ENABLED.value()
    ):
        return lambda: None
    with socket.socket() as sock:  # a free port on loopback
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tempfile.TemporaryFile()  # what it said, for the error if it never answers
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        env={
            **os.environ,
            **get_current_settings().to_environment_variables(exclude_unset=True),
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",  # as Prefect's own temporary server
            "PREFECT__SERVER_FINAL": "1",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    atexit.register(_stop, proc)
    api = f"http://127.0.0.1:{port}/api"
    _STARTED_HERE.add(api)

    def ready() -> None:
        timeout = get_current_settings().server.ephemeral.startup_timeout_seconds
        why = _await_health(api, proc, timeout, step=0.1)
        if why:
            log.seek(0)
            said = log.read().decode(errors="replace").strip().splitlines()[-3:]
            raise ServerError(
                f"Prefect tạm thời cục bộ không khởi động được / the temporary local "
                f"Prefect server {why}: {' | '.join(said)}"
            )
        _update_settings({PREFECT_API_URL: api})  # this process's runs go there

    return ready


_STARTED_HERE: set[str] = set()  # the temporary servers `warm_local_server` started


def temporary_server() -> bool:
    """Whether this process's runs go to a temporary local server (Prefect's own, or the one
    `warm_local_server` started): no UI to answer a pause, gone when the process ends."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return not url or str(url).rstrip("/") in _STARTED_HERE


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
