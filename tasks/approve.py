"""Approval before dispatch. The report's definition names who may approve
(`approval.approvers`); each of them gets a one-time code at their own contacts for every
version waiting for approval, and a decision counts only with a valid code: knowing the
Prefect API (or the UI's Resume button) is not enough. The code itself is never stored,
only its SHA-256, with an expiry (the approval timeout), the time it was used and the
wrong tries against it. The decision (who, when, approve or send back, comment) is kept in
baocao's own database; Prefect's pause is only the form the approver fills in."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from prefect import get_run_logger, pause_flow_run, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from pydantic import Field
from sqlmodel import Session, select

from baocao import crud
from baocao.config import Config, ReportDef
from baocao.db import session_scope
from baocao.faults import checkpoint
from baocao.models import ApprovalCode, RenderedReport, ReportStatus
from baocao.notices import queue_notices
from baocao.periods import Period, as_vn, now_vn
from baocao.prefect_server import temporary_server
from baocao.runtime import Runtime
from tasks.consolidate import Consolidated
from tasks.messages import approval_notice
from tasks.render import output_names

KIND = "approval"


class Decision(RunInput):
    """The form shown in the Prefect UI when a report waits for approval."""

    approver: str = Field(
        ..., min_length=1, max_length=64, description="Mã người duyệt / approver key"
    )
    code: str = Field(
        ...,
        min_length=1,
        max_length=16,
        description="Mã duyệt một lần nhận qua thư / one-time code from your message",
    )
    decision: Literal["approve", "send_back"] = Field(
        "approve", description="Duyệt / approve, or trả lại / send back"
    )
    comment: str = Field("", description="Ý kiến / comment (required when sending back)")
    number: str = Field(
        "",
        max_length=32,
        pattern=r"^\s*(\d{1,6}(/\S+)?)?\s*$",
        description="Số văn bản / document number, e.g. 25 or 25/BC-UBND (required to approve)",
    )
    signed_on: dt.date | None = Field(
        None, description="Ngày ký / signing date, e.g. 2022-04-05 (blank: today)"
    )


@dataclass(frozen=True)
class Verdict:
    """What became of one try: `ok` with the decided version, or why it did not count."""

    ok: bool
    message: str
    row: RenderedReport | None = None


def parse_number(value: str, symbol: str) -> str:
    """The document number as stored ("25"), from "25" or "25/BC-UBND"; ValueError with one
    Vietnamese line otherwise."""
    text = value.strip()
    digits, _, suffix = text.partition("/")
    if not re.fullmatch(r"\d{1,6}", digits) or int(digits) == 0:
        raise ValueError(
            f"số văn bản '{value}' không hợp lệ: nhập số, ví dụ 25 hoặc 25/{symbol} "
            "/ document number must be like 25"
        )
    if suffix and suffix.strip().upper() != symbol.upper():
        raise ValueError(
            f"số văn bản '{value}': ký hiệu phải là /{symbol} / the symbol must be /{symbol}"
        )
    return str(int(digits))


def check_decision(
    rt: Runtime, *, approve: bool, number: str, signed_on: dt.date | None, now: dt.datetime
) -> tuple[str | None, dt.date | None, str]:
    """(number, signing date, why not): an approval needs the issued number (unless the mail
    is a courtesy copy) and a signing date not after today; a send-back needs neither."""
    if not approve:
        return None, None, ""
    symbol = rt.report.symbol
    today = as_vn(now).date()
    day = signed_on or today
    if day > today:
        return None, None, f"ngày ký {day:%d/%m/%Y} ở tương lai / signing date is in the future"
    if not number.strip():
        if rt.report.approval.courtesy_copy:
            return None, day, ""
        return (
            None,
            None,
            (
                f"cần số văn bản để duyệt (ví dụ --number 25 cho Số: 25/{symbol}): không gửi báo "
                "cáo với Số để trống / an approval needs the document number"
            ),
        )
    try:
        return parse_number(number, symbol), day, ""
    except ValueError as exc:
        return None, None, str(exc)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


def new_code(digits: int) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def _live(code: ApprovalCode, now: dt.datetime, max_tries: int) -> bool:
    return code.used_at is None and code.expires_at > now and code.failed_tries < max_tries


def _codes(s: Session, report_id: int, approver: str | None = None) -> list[ApprovalCode]:
    stmt = select(ApprovalCode).where(ApprovalCode.report_version_id == report_id)
    if approver is not None:
        stmt = stmt.where(ApprovalCode.approver == approver)
    return list(s.exec(stmt.order_by(ApprovalCode.id.desc())))


def issue_codes(
    rt: Runtime,
    row: RenderedReport,
    period: Period,
    now: dt.datetime,
    *,
    completeness: str = "",
    timeliness: str = "",
    notes: Sequence[str] = (),
) -> list[str]:
    """A new one-time code for each approver who has no live one for this version: its
    SHA-256 stored (expiring after the approval timeout), the code queued to the approver's
    own contacts with what the approver should know first (`notes`: dated late, figures
    lacking units, defaults printed), both in one transaction. Returns the outbox keys added (none on a rerun
    while the codes sent before are still good)."""
    approval = rt.report.approval
    expires = now + dt.timedelta(hours=rt.schedule.approval_timeout_hours)
    added: list[str] = []
    for approver in approval.approvers:
        with session_scope(rt.engine) as s:
            if any(_live(c, now, approval.max_tries) for c in _codes(s, row.id, approver.key)):
                continue
            code = new_code(approval.code_digits)
            stored = ApprovalCode(
                report_version_id=row.id,
                approver=approver.key,
                code_hash=code_hash(code),
                created_at=now,
                expires_at=expires,
            )
            s.add(stored)
            s.flush()
            folder = Path(row.folder)
            files = [str(folder / n) for n in output_names(rt.report, period, rt.cfg.body).sent]
            notice = approval_notice(
                rt,
                key=f"{KIND}:{rt.report.id}:{period.code}:v{row.version}:{approver.key}"
                f":c{stored.id}",
                period=period,
                version=row.version,
                approver=approver,
                code=code,
                expires=expires,
                attachments=[f for f in files if Path(f).is_file()],
                files=[Path(f).name for f in files],
                completeness=completeness,
                timeliness=timeliness,
                notes=notes,
            )
            added += queue_notices(s, [notice])
        checkpoint("approval.code_queued")
    return added


def code_expiry(rt: Runtime, report_id: int, now: dt.datetime) -> dt.datetime | None:
    """When the last live code of this version expires (None: no live code)."""
    with session_scope(rt.engine) as s:
        live = [c for c in _codes(s, report_id) if _live(c, now, rt.report.approval.max_tries)]
    return max((c.expires_at for c in live), default=None)


def _failed_try(codes: list[ApprovalCode], s: Session) -> None:
    for c in codes:
        c.failed_tries += 1
        s.add(c)


def decide(
    rt: Runtime,
    report_id: int,
    *,
    approver: str,
    code: str,
    approve: bool,
    comment: str,
    now: dt.datetime,
    number: str = "",
    signed_on: dt.date | None = None,
) -> Verdict:
    """Apply one decision if `code` is the live one-time code of `approver` for this version;
    otherwise record a failed try and say why (Vietnamese first). An approval carries the
    issued number and the signing date, checked before the code (a wrong number costs no
    try)."""
    approval = rt.report.approval
    number_ok, day, why = check_decision(
        rt, approve=approve, number=number, signed_on=signed_on, now=now
    )
    if why:
        return Verdict(False, why)
    who = approval.approver(approver.strip())
    digest = code_hash(code)
    with session_scope(rt.engine) as s:
        row = s.get(RenderedReport, report_id)
        label = f"phiên bản {row.version}"
        if row.status == ReportStatus.APPROVED:
            return Verdict(False, f"{label} đã được duyệt ({row.decided_by}); không đổi nữa")
        if who is None:
            _failed_try([c for c in _codes(s, row.id) if _live(c, now, approval.max_tries)], s)
            keys = ", ".join(a.key for a in approval.approvers) or "chưa khai báo"
            return Verdict(
                False,
                f"không có người duyệt '{approver}' (người duyệt: {keys}) / unknown approver",
            )
        mine = _codes(s, row.id, who.key)
        match = next((c for c in mine if hmac.compare_digest(c.code_hash, digest)), None)
        live = [c for c in mine if _live(c, now, approval.max_tries)]
        if match is None:
            _failed_try(live[:1], s)
            if not live:
                return Verdict(
                    False,
                    f"mã không đúng, và {who.key} không còn mã nào hiệu lực cho {label}: chạy "
                    "publish lại để nhận mã mới / wrong code, and no valid code left",
                )
            left = approval.max_tries - live[0].failed_tries
            return Verdict(
                False,
                f"mã không đúng cho {who.key}, {label} (còn {left} lần thử) / wrong code",
            )
        if match.used_at is not None:
            _failed_try([match], s)
            return Verdict(False, f"mã của {who.key} đã được dùng / code already used")
        if match.expires_at <= now:
            _failed_try([match], s)
            return Verdict(
                False,
                f"mã của {who.key} đã hết hạn; chạy publish lại để nhận mã mới / code expired",
            )
        if match.failed_tries >= approval.max_tries:
            return Verdict(
                False,
                f"mã của {who.key} đã bị khóa sau {approval.max_tries} lần nhập sai; chạy "
                "publish lại để nhận mã mới / code void after too many wrong tries",
            )
        taken = s.execute(
            sa.update(ApprovalCode)
            .where(ApprovalCode.id == match.id, ApprovalCode.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        if not taken:  # used by a concurrent decision a moment ago
            return Verdict(False, f"mã của {who.key} đã được dùng / code already used")
        status = ReportStatus.APPROVED if approve else ReportStatus.SENT_BACK
        row.status, row.decided_by, row.decided_at, row.comment = status, who.name, now, comment
        row.number, row.signed_on = number_ok, day
        s.add(row)
        issued = (
            f", số {number_ok}/{rt.report.symbol} ngày {day:%d/%m/%Y}"
            if number_ok
            else (" (bản gửi để biết, không số / courtesy copy)" if approve else "")
        )
        return Verdict(True, f"{label}: {status} bởi {who.name}{issued}", row)


def record_timeout(
    rt: Runtime, report_id: int, *, hours: float, now: dt.datetime, since: dt.datetime
):
    """No decision in time: the draft is kept, marked timed out (unless approved, or decided
    since the wait began, e.g. with `baocao approve` while the run waited)."""
    with session_scope(rt.engine) as s:
        row = s.get(RenderedReport, report_id)
        if row.status == ReportStatus.APPROVED or (row.decided_at and row.decided_at >= since):
            return row
        row.status, row.decided_by, row.decided_at = ReportStatus.TIMED_OUT, None, now
        row.comment = f"không có quyết định trong {hours:g} giờ / no decision within {hours:g} h"
        s.add(row)
        return row


def reload(rt: Runtime, report_id: int) -> RenderedReport:
    with session_scope(rt.engine) as s:
        return s.get(RenderedReport, report_id)


def late_note(rt: Runtime, period: Period, report_date: dt.date) -> str:
    """A line when the report is dated past the period's report deadline ("" if not)."""
    from tasks.collect import period_dates

    deadline = as_vn(period_dates(period, rt.schedule).report_deadline)
    last_day = (deadline - dt.timedelta(seconds=1)).date()
    if report_date <= last_day:
        return ""
    return (
        f"Báo cáo đề ngày {report_date:%d/%m/%Y}, quá hạn báo cáo {last_day:%d/%m/%Y} "
        f"({(report_date - last_day).days} ngày) / dated past the report deadline"
    )


def coverage_notes(result: Consolidated, report: ReportDef, cfg: Config | None = None) -> list[str]:
    """What the approver should know is not the whole picture: each figure that lacks some
    of its owners (with who), and each optional text that printed its standing default."""
    names = cfg.unit_map if cfg is not None else {}
    lines: list[str] = []
    for ind in report.indicators:
        cov = result.coverage.get(ind.code)
        if cov is None or cov.complete:
            continue
        if ind.type == "text":
            if ind.default:
                lines.append(
                    f"Dùng nội dung mặc định / default printed: {ind.label} ({ind.code}), "
                    f"đơn vị chưa nhập: «{ind.default}»"
                )
            continue
        who = ", ".join(names[u].name if u in names else u for u in cov.missing)
        lines.append(
            f"Thiếu số liệu / partial: {ind.label} ({ind.code}) chỉ có số liệu của {cov.text} "
            f"đơn vị; chưa có / missing: {who}"
        )
    return lines


def approval_prompt(
    rt: Runtime,
    row: RenderedReport,
    completeness: str,
    timeliness: str,
    late: str = "",
    result: Consolidated | None = None,
) -> str:
    people = "; ".join(
        f"`{a.key}` ({a.name}{', ' + a.title if a.title else ''})"
        for a in rt.report.approval.approvers
    )
    notes = coverage_notes(result, rt.report, rt.cfg) if result is not None else []
    return (
        (f"**⚠ {late}.**\n\n" if late else "")
        + f"**Báo cáo phiên bản {row.version}** chờ duyệt / waiting for approval.\n\n"
        f"Đã nhận {completeness} đơn vị, đúng hạn {timeliness}. Tệp: `{row.folder}`.\n\n"
        + "".join(f"- {n}\n" for n in notes)
        + ("\n" if notes else "")
        + f"Người duyệt / approvers: {people}. Mỗi người đã nhận một **mã duyệt một lần** qua "
        "thư; nhập mã người duyệt (*approver*) và mã (*code*), rồi chọn *approve* để gửi đến "
        "nơi nhận, kèm **số văn bản** (*number*, ví dụ 25 cho "
        f"Số: 25/{rt.report.symbol}) và **ngày ký** (*signed_on*, để trống: hôm nay), hoặc "
        "*send_back* kèm ý kiến để giữ bản nháp. Mã sai không được tính."
    )


def latest_version(rt: Runtime, period: Period) -> RenderedReport:
    with session_scope(rt.engine) as s:
        period_row = crud.get_period(s, report_id=rt.report.id, code=period.code)
        latest = crud.latest_report(s, period_id=period_row.id) if period_row else None
    if latest is None:
        raise ValueError(
            f"{period.code}: chạy `baocao publish {period.code}` trước: chưa có báo cáo nào "
            "được lập / no report rendered yet"
        )
    return latest


def decide_latest(
    rt: Runtime,
    period: Period,
    *,
    approver: str,
    code: str,
    approve: bool,
    comment: str,
    now: dt.datetime,
    number: str = "",
    signed_on: dt.date | None = None,
) -> Verdict:
    """A decision on the period's latest rendered version (`baocao approve`), with the
    same checks as the form in the UI."""
    return decide(
        rt,
        latest_version(rt, period).id,
        approver=approver,
        code=code,
        approve=approve,
        comment=comment,
        now=now,
        number=number,
        signed_on=signed_on,
    )


@task(name="issue-approval-codes", cache_policy=NO_CACHE)
def issue_codes_task(
    rt: Runtime, row: RenderedReport, period: Period, now: dt.datetime, **summary
) -> list[str]:
    """One-time codes for the approvers of this version, queued to their contacts."""
    return issue_codes(rt, row, period, now, **summary)


_BY_COMMAND_LINE: list[bool] = []


@contextmanager
def answered_by_command_line() -> Iterator[None]:
    """Within: publish never pauses for the UI; the approvers answer with `baocao approve`
    (the demo answers this way, as an office without the UI open would)."""
    _BY_COMMAND_LINE.append(True)
    try:
        yield
    finally:
        _BY_COMMAND_LINE.pop()


def can_pause() -> bool:
    """A pause needs a Prefect server with a UI to answer it; the temporary one has none."""
    return not _BY_COMMAND_LINE and not temporary_server()


def wait_for_approval(rt, row, result, late: str = ""):
    """Pause for an approver's decision in the UI, at most `approval.max_tries` times: a
    try counts only with the approver's live one-time code; a wrong, used or expired code is
    logged and asked again. No valid decision in time keeps the draft. Inside a flow run."""
    log = get_run_logger()
    hours = rt.schedule.approval_timeout_hours
    tries = rt.report.approval.max_tries
    prompt = approval_prompt(rt, row, result.completeness, result.timeliness, late, result)
    since = now_vn()
    for attempt in range(1, tries + 1):
        current = reload(rt, row.id)
        if current.status == ReportStatus.APPROVED:  # e.g. `baocao approve` meanwhile
            return current
        expiry = code_expiry(rt, row.id, now_vn())
        left = (expiry - now_vn()).total_seconds() if expiry else 0
        if left <= 0:
            return record_timeout(rt, row.id, hours=hours, now=now_vn(), since=since)
        try:
            decision = pause_flow_run(
                wait_for_input=Decision.with_initial_data(description=prompt),
                timeout=max(1, int(left)),
                poll_interval=5,
            )
        except FlowPauseTimeout:
            return record_timeout(rt, row.id, hours=hours, now=now_vn(), since=since)
        verdict = decide(
            rt,
            row.id,
            approver=decision.approver,
            code=decision.code,
            approve=decision.decision == "approve",
            comment=decision.comment,
            now=now_vn(),
            number=decision.number,
            signed_on=decision.signed_on,
        )
        if verdict.ok:
            log.info("%s", verdict.message)
            return verdict.row
        log.warning(
            "quyết định không được tính (lần %d/%d) / decision refused: %s",
            attempt,
            tries,
            verdict.message,
        )
    log.warning("hết %d lần thử / no tries left: bản nháp giữ nguyên", tries)
    return reload(rt, row.id)
