"""What every flow does first: read its parameters, build the runtime, fix the clock."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import re
import typing
from collections.abc import Callable
from typing import TypeVar

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Failed

from baocao.errors import as_user_error, one_line, quiet_user_errors_in_logs
from baocao.periods import Period, now_vn, parse_moment
from baocao.prefect_server import quiet_local_runs
from baocao.runtime import Runtime, build_runtime
from tasks.collect import collecting_period, select_units
from tasks.notify import DeliveryFailed, delivery_failure
from tasks.status import outbox_frame, period_status, status_table

REPORT_HELP = (
    "Báo cáo / report id, e.g. cchc-quarterly (blank: the config's only report; for intake "
    "and reminders: every report)"
)
PERIOD_HELP = "Kỳ báo cáo / period, e.g. 2022-Q1 (blank: the one the schedule points at)"
UNITS_HELP = "Mã đơn vị / unit codes, e.g. ['NV','TCKH'] (blank: all units)"
FORCE_HELP = "Gửi lại cả thư đã gửi / resend even what was already sent"
AS_OF_HELP = "Thời điểm giả định / run as of this time, e.g. 2022-03-15T08:00 (blank: now)"
CONFIG_HELP = "Thư mục cấu hình / config folder (blank: BAOCAO_CONFIG_DIR or the bundled one)"

# Every process that runs these flows imports this module before its first run: on the
# temporary local server, runs go without the heartbeat (see `quiet_local_runs`).
quiet_local_runs()

F = TypeVar("F", bound=Callable)


def run_name() -> str:
    """A run's name in the UI says what it is about: `cchc-quarterly 2022-Q1`, or
    `tat-ca-bao-cao ky-hien-tai` (every report, the period each is collecting)."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    return f"{params.get('report') or 'tat-ca-bao-cao'} {params.get('period') or 'ky-hien-tai'}"


def user_errors_fail(fn: F) -> F:
    """Under `@flow`: a user's mistake (config, period, parameter) or an unusable store, disk
    or API ends the run Failed with one line, in the run's log and as the state's message,
    without a traceback (Prefect logs one for any exception a flow raises). Calling the flow
    from Python still raises the exception, so the command line prints the same line.
    Anything else (a bug) propagates with its traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            problem = as_user_error(exc)
            if problem is None:
                raise
            logger = get_run_logger()
            logger.error("Lỗi / error: %s", one_line(problem))
            logger.debug("details", exc_info=exc)
            return Failed(message=one_line(problem), data=problem)

    # Prefect builds the parameter model from the annotations; resolved here, since the
    # wrapper's module (this one) does not define names like reporting_cycle's `Stage`.
    wrapper.__annotations__ = typing.get_type_hints(fn, include_extras=True)
    wrapper.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def start(
    config_dir: str, as_of: str, units: list[str] | None = None, report: str = ""
) -> tuple[Runtime, dt.datetime]:
    """Runtime and the run's clock (`as_of`, or now in Asia/Ho_Chi_Minh). Blank parameters
    (what the UI's form sends for "not set") mean the defaults. Every parameter is checked
    here, before any task runs: `as_of`, the config, the store and the `units` asked for
    (unknown codes are a ValueError naming the known ones) and the `report` (blank: every
    report; `rt.report` then asks to name one when the config has several)."""
    quiet_user_errors_in_logs()  # a mistake inside a task: its one line, not a traceback
    now = parse_moment(as_of) or now_vn()
    rt = build_runtime(config_dir or None, report or None)
    if units and len(rt.reports) == 1:
        select_units(rt.cfg, rt.report, units)
    elif units:
        known = {u for r in rt.reports for u in rt.cfg.expected_units(r)}
        if unknown := [u for u in units if u not in known]:
            raise ValueError(f"unknown unit code(s) {unknown}; known: {', '.join(sorted(known))}")
    return rt, now


def pick_period(rt: Runtime, period: str, now: dt.datetime) -> Period:
    """The period asked for, or the one being collected now (see `collecting_period`)."""
    if period:
        p = Period.parse(period)
        if p.kind != rt.report.period_kind:
            example = collecting_period(now.date(), rt.report.period_kind, rt.schedule)
            raise ValueError(
                f"{p.label} ({p.code}) không phải kỳ của báo cáo {rt.report.id}, báo cáo này "
                f"theo kỳ như {example.label} ({example.code}) / period {p.code} is not a "
                f"'{rt.report.period_kind}' period of {rt.report.id}"
            )
        return p
    return collecting_period(now.date(), rt.report.period_kind, rt.schedule)


def log_force(force: bool, what: str) -> str | None:
    """A tag that makes a forced resend a new intent, announced in the run's log."""
    if not force:
        return None
    tag = now_vn().isoformat(timespec="seconds")
    get_run_logger().warning(
        "force=True: %s will be sent again, even where already sent (tag %s)", what, tag
    )
    return tag


def artifact_key(rt: Runtime, kind: str, period: Period) -> str:
    """Prefect artifact keys take lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]", "-", f"{kind}-{rt.report.id}-{period.code}".lower())


def publish_status_artifact(rt: Runtime, period: Period) -> list[dict]:
    """The period's completeness table (unit, state, version, on time, findings) in the UI."""
    rows = period_status(rt, period)
    table, path = status_table(rt, period, rows)
    done = sum(r["state"] == "valid" for r in rows)
    shown = "" if len(table) == len(rows) else f"; {len(table)} đơn vị cần chú ý / need attention"
    create_table_artifact(
        key=artifact_key(rt, "status", period),
        table=table,
        description=f"{period.label}: {done}/{len(rows)} đơn vị đã gửi hợp lệ / units in"
        f"{shown}; cả bảng / full table: {path}",
    )
    return rows


def publish_outbox_artifact(rt: Runtime, period: Period, kind: str, since: dt.datetime) -> None:
    """The messages of one kind queued since `since`, with their delivery status."""
    frame = outbox_frame(rt, period)
    frame = frame[(frame["kind"] == kind) & (frame["created_at"] >= since)]
    table = [
        {
            "unit": r.unit or "",
            "recipient": r.recipient,
            "address": r.address,
            "subject": r.subject,
            "status": r.status,
            "attempts": int(r.attempts),
            "error": r.last_error,
        }
        for r in frame.itertuples()
    ]
    create_table_artifact(
        key=artifact_key(rt, kind + "s", period),
        table=table,
        description=f"{len(table)} {kind} message(s) this run",
    )


def check_delivery(rt: Runtime, what: str, counts: dict, kind: str, period: Period) -> str | None:
    """After a delivery step: one line (logged as an error) when every message it tried
    failed, a warning when some did, None when all went or nothing was due."""
    if not counts.get("failed"):
        return None
    last = last_delivery_error(rt, period, kind)
    line = delivery_failure(what, counts, last)
    if line is None:
        get_run_logger().warning(
            "%s: %d thư chưa gửi được, sẽ thử lại ở lần chạy sau (lỗi cuối: %s) / %d not "
            "delivered, retried by the next run",
            what,
            counts["failed"],
            last or "-",
            counts["failed"],
        )
        return None
    get_run_logger().error("%s", line)
    return line


def last_delivery_error(rt: Runtime, period: Period, kind: str) -> str:
    """The newest error recorded on an unsent message of this kind and period, on one line."""
    frame = outbox_frame(rt, period)
    frame = frame[
        (frame["kind"] == kind) & (frame["status"] != "sent") & (frame["last_error"] != "")
    ]
    return " ".join(str(frame.iloc[-1]["last_error"]).split()) if len(frame) else ""


def finish(summary, *problems: str | None):
    """The flow's result: its summary, or a Failed state naming what could not be sent
    (its data a DeliveryFailed carrying the summary, so a caller can still show it)."""
    lines = [p for p in problems if p]
    if not lines:
        return summary
    line = "; ".join(lines)
    return Failed(message=line, data=DeliveryFailed(line, summary))
