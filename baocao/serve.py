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

DEFAULT_API = "http://127.0.0.1:4200/api"


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def ensure_server(log_file: Path, timeout: float = 180) -> tuple[str, subprocess.Popen | None]:
    """The API URL to use, starting `prefect server start` on loopback when needed."""
    api = os.environ.get("PREFECT_API_URL") or DEFAULT_API
    if healthy(api):
        return api, None
    if os.environ.get("PREFECT_API_URL"):
        raise RuntimeError(f"PREFECT_API_URL={api} does not answer; start that server or unset it")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "true"}
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
            "4200",
        ],
        stdout=log_file.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(api):
            return api, proc
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server stopped (exit {proc.returncode}); see {log_file}")
        time.sleep(1)
    proc.terminate()
    raise RuntimeError(f"prefect server not healthy after {timeout:.0f} s; see {log_file}")


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
