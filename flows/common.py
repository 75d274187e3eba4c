"""What every flow does first: read its parameters, build the runtime, fix the clock."""

from __future__ import annotations

import datetime as dt
import re

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact

from baocao.periods import Period, now_vn, parse_moment
from baocao.runtime import Runtime, build_runtime
from tasks.collect import collecting_period
from tasks.status import outbox_frame, period_status

PERIOD_HELP = "Kỳ báo cáo / period, e.g. 2022-Q1 (blank: the one the schedule points at)"
UNITS_HELP = "Mã đơn vị / unit codes, e.g. ['NV','TCKH'] (blank: all units)"
FORCE_HELP = "Gửi lại cả thư đã gửi / resend even what was already sent"
AS_OF_HELP = "Thời điểm giả định / run as of this time, e.g. 2022-03-15T08:00 (blank: now)"
CONFIG_HELP = "Thư mục cấu hình / config folder (blank: BAOCAO_CONFIG_DIR or the bundled one)"


def start(config_dir: str, as_of: str) -> tuple[Runtime, dt.datetime]:
    """Runtime and the run's clock (`as_of`, or now in Asia/Ho_Chi_Minh). Blank parameters
    (what the UI's form sends for "not set") mean the defaults."""
    now = parse_moment(as_of) or now_vn()
    return build_runtime(config_dir or None), now


def pick_period(rt: Runtime, period: str, now: dt.datetime) -> Period:
    """The period asked for, or the one being collected now (see `collecting_period`)."""
    if period:
        p = Period.parse(period)
        if p.kind != rt.report.period_kind:
            raise ValueError(
                f"period {p.code} is not a '{rt.report.period_kind}' period of {rt.report.id}"
            )
        return p
    return collecting_period(now.date(), rt.report.period_kind, rt.cfg.schedule)


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
    table = [{**r, "findings": " | ".join(r["findings"])} for r in rows]
    done = sum(r["state"] == "valid" for r in rows)
    create_table_artifact(
        key=artifact_key(rt, "status", period),
        table=table,
        description=f"{period.label}: {done}/{len(rows)} đơn vị đã gửi hợp lệ / units in",
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
