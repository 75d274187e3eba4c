"""`baocao serve`: a Prefect server with its UI (started if none answers), and every flow
served from this process as a deployment with its schedule in Asia/Ho_Chi_Minh.

Prefect's temporary server (what runs when PREFECT_API_URL is unset) has no UI, so this
starts `prefect server start` on 127.0.0.1:4200 unless PREFECT_API_URL names a server or
one already answers there.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

DEFAULT_PORT = 4200
DEFAULT_API = f"http://127.0.0.1:{DEFAULT_PORT}/api"


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class ServerError(RuntimeError):
    """No Prefect server to talk to; the message says which and where its log is."""


def start_server(
    port: int, log_file: Path, *, env: dict[str, str] | None = None, timeout: float = 180
) -> tuple[str, subprocess.Popen]:
    """`prefect server start` with its UI on 127.0.0.1:`port`, once it answers healthy."""
    api = f"http://127.0.0.1:{port}/api"
    run_env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_UI_API_URL": api,
        **(env or {}),
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(api):
            return api, proc
        if proc.poll() is not None:
            raise ServerError(f"prefect server stopped (exit {proc.returncode}); see {log_file}")
        time.sleep(1)
    proc.terminate()
    raise ServerError(f"prefect server not healthy after {timeout:.0f} s; see {log_file}")


def ensure_server(log_file: Path) -> tuple[str, subprocess.Popen | None]:
    """The API URL to use: PREFECT_API_URL's server, one already on 127.0.0.1:4200, or one
    started there now (then also returned, for the caller to stop)."""
    api = os.environ.get("PREFECT_API_URL") or DEFAULT_API
    if healthy(api):
        return api, None
    if os.environ.get("PREFECT_API_URL"):
        raise ServerError(
            f"PREFECT_API_URL={api} does not answer: start that server or unset the variable"
        )
    return start_server(DEFAULT_PORT, log_file)


def build_deployments(now: dt.datetime, config_dir: str | None = None, ingest_minutes: int = 5):
    """One deployment per flow, dated ones on RDATE schedules from the period rules."""
    from prefect.client.schemas.schedules import IntervalSchedule, RRuleSchedule

    from baocao.runtime import build_runtime
    from flows.ingest_submissions import ingest_submissions
    from flows.open_period import open_period
    from flows.publish_report import publish_report
    from flows.quarterly_cycle import quarterly_cycle
    from flows.send_reminders import send_reminders
    from tasks.schedule import deployment_times, rrule_with_dates

    rt = build_runtime(config_dir)
    times = deployment_times(now.date(), rt.report.period_kind, rt.cfg.schedule)
    tz = rt.settings.timezone
    params = {"config_dir": config_dir} if config_dir else {}

    def dated(name: str) -> list:
        return [RRuleSchedule(rrule=rrule_with_dates(times[name], now), timezone=tz)]

    deployments = [
        open_period.to_deployment(
            name="open-period", schedules=dated("open-period"), parameters=params, tags=["baocao"]
        ),
        send_reminders.to_deployment(
            name="send-reminders",
            schedules=dated("send-reminders"),
            parameters=params,
            tags=["baocao"],
        ),
        ingest_submissions.to_deployment(
            name="ingest-submissions",
            parameters=params,
            tags=["baocao"],
            schedules=[
                IntervalSchedule(interval=dt.timedelta(minutes=ingest_minutes), timezone=tz)
            ],
        ),
        publish_report.to_deployment(
            name="publish-report",
            schedules=dated("publish-report"),
            parameters=params,
            tags=["baocao"],
        ),
        quarterly_cycle.to_deployment(name="quarterly-cycle", parameters=params, tags=["baocao"]),
    ]
    return deployments, times
