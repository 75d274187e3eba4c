"""Approval before dispatch: the decision (who, when, approve or send back, comment) is kept
in baocao's own database; Prefect's pause is only the form the administrator fills in."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from prefect.input import RunInput
from pydantic import Field

from baocao import crud
from baocao.db import session_scope
from baocao.models import RenderedReport
from baocao.periods import Period
from baocao.runtime import Runtime


class Decision(RunInput):
    """The form shown in the Prefect UI when a report waits for approval."""

    decision: Literal["approve", "send_back"] = Field(
        "approve", description="Duyệt / approve, or trả lại / send back"
    )
    decided_by: str = Field(..., min_length=2, description="Họ tên người quyết định / your name")
    comment: str = Field("", description="Ý kiến / comment (required when sending back)")


def record_decision(
    rt: Runtime,
    report_id: int,
    *,
    status: str,
    decided_by: str | None,
    comment: str,
    now: dt.datetime,
) -> RenderedReport:
    """Store the decision on the rendered version; later versions start as drafts again."""
    with session_scope(rt.engine) as s:
        row = s.get(RenderedReport, report_id)
        row.status, row.decided_by, row.decided_at, row.comment = status, decided_by, now, comment
        s.add(row)
        return row


def approval_prompt(row: RenderedReport, completeness: str, timeliness: str) -> str:
    return (
        f"**Báo cáo phiên bản {row.version}** chờ duyệt / waiting for approval.\n\n"
        f"Đã nhận {completeness} đơn vị, đúng hạn {timeliness}. Tệp: `{row.folder}`.\n\n"
        "Chọn *approve* để gửi đến nơi nhận, hoặc *send_back* kèm ý kiến để giữ bản nháp."
    )


def decide_latest(
    rt: Runtime, period: Period, *, approve: bool, decided_by: str, comment: str, now: dt.datetime
) -> RenderedReport:
    """Record a decision on the period's latest rendered version (`baocao approve`)."""
    with session_scope(rt.engine) as s:
        period_row = crud.get_period(s, report_id=rt.report.id, code=period.code)
        latest = crud.latest_report(s, period_id=period_row.id) if period_row else None
    if latest is None:
        raise ValueError(
            f"{period.code}: no report rendered yet; run `baocao publish {period.code}` first"
        )
    return record_decision(
        rt,
        latest.id,
        status="approved" if approve else "sent_back",
        decided_by=decided_by,
        comment=comment,
        now=now,
    )


def can_pause() -> bool:
    """A pause needs a Prefect server with a UI to answer it; the temporary one has none."""
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)
