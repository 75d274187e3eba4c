"""What every flow does first: read its parameters, build the runtime, fix the clock."""

from __future__ import annotations

import datetime as dt

from prefect import get_run_logger

from baocao.periods import Period, now_vn, parse_moment
from baocao.runtime import Runtime, build_runtime
from tasks.collect import collecting_period

PERIOD_HELP = "Kỳ báo cáo / period, e.g. 2022-Q1 (blank: the one the schedule points at)"
UNITS_HELP = "Mã đơn vị / unit codes, e.g. ['NV','TCKH'] (blank: all units)"
FORCE_HELP = "Gửi lại cả thư đã gửi / resend even what was already sent"
AS_OF_HELP = "Thời điểm giả định / run as of this time, e.g. 2022-03-15T08:00 (blank: now)"
CONFIG_HELP = "Thư mục cấu hình / config folder (blank: BAOCAO_CONFIG_DIR or the bundled one)"


def start(config_dir: str | None, as_of: str | None) -> tuple[Runtime, dt.datetime]:
    """Runtime and the run's clock (`as_of`, or now in Asia/Ho_Chi_Minh)."""
    now = parse_moment(as_of) or now_vn()
    return build_runtime(config_dir), now


def pick_period(rt: Runtime, period: str | None, now: dt.datetime) -> Period:
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
