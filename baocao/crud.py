"""Store access in one place: keyword-only functions over an explicit session.

Bulk paths (submission values, outbox messages) insert many rows per statement and read
back DataFrames, so a province's thousands of units cost a few statements, not thousands.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, func, select

from baocao.models import (
    CollectionRequest,
    Finding,
    OutboxMessage,
    Outcome,
    Receipt,
    RenderedReport,
    ReportingPeriod,
    Submission,
    SubmissionValue,
    utcnow,
)

# ---- periods and requests ---------------------------------------------------------------


def get_period(session: Session, *, report_id: str, code: str) -> ReportingPeriod | None:
    stmt = select(ReportingPeriod).where(
        ReportingPeriod.report_id == report_id, ReportingPeriod.code == code
    )
    return session.exec(stmt).first()


def ensure_period(session: Session, *, row: ReportingPeriod) -> ReportingPeriod:
    """The stored period with row's report and code, created from `row` if absent."""
    existing = get_period(session, report_id=row.report_id, code=row.code)
    if existing:
        return existing
    session.add(row)
    session.flush()
    return row


def requests_for(session: Session, *, period_id: int) -> dict[str, CollectionRequest]:
    rows = session.exec(select(CollectionRequest).where(CollectionRequest.period_id == period_id))
    return {r.unit_code: r for r in rows}


def add_requests(session: Session, *, rows: Sequence[CollectionRequest]) -> None:
    session.add_all(rows)
    session.flush()


def token_map(session: Session, *, report_id: str) -> dict[str, tuple[str, str]]:
    """Request token -> (unit code, period code) of this report's requests, to recognise
    returned forms and to let only the unit a form was issued to submit with it."""
    stmt = (
        select(CollectionRequest.token, CollectionRequest.unit_code, ReportingPeriod.code)
        .join(ReportingPeriod, ReportingPeriod.id == CollectionRequest.period_id)
        .where(ReportingPeriod.report_id == report_id)
    )
    return {token: (unit, period) for token, unit, period in session.exec(stmt)}


def periods_by_code(session: Session, *, report_id: str) -> dict[str, ReportingPeriod]:
    """The report's opened periods (only these accept submissions)."""
    rows = session.exec(select(ReportingPeriod).where(ReportingPeriod.report_id == report_id))
    return {r.code: r for r in rows}


# ---- receipts, submissions, findings ----------------------------------------------------


def _insert_ignoring(session: Session, table, rows: Sequence[dict], keys: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(table).on_conflict_do_nothing(index_elements=list(keys)), list(rows))


def ensure_receipts(session: Session, *, rows: Sequence[dict]) -> dict[str, Receipt]:
    """The receipt of each arrival (by `arrival_key`), created if it is new, and the read
    attempt counted on those still open. A rerun after a crash finds the same receipts."""
    _insert_ignoring(session, Receipt, rows, ["arrival_key"])
    keys = [r["arrival_key"] for r in rows]
    session.execute(
        sa.update(Receipt)
        .where(Receipt.arrival_key.in_(keys), Receipt.outcome == Outcome.RECEIVED)
        .values(attempts=Receipt.attempts + 1)
    )
    found = session.exec(select(Receipt).where(Receipt.arrival_key.in_(keys)))
    return {r.arrival_key: r for r in found}


def quarantined_sha256(session: Session, *, sha256s: Iterable[str]) -> set[str]:
    """Of these digests, the ones already set aside as files that kill their reader."""
    stmt = select(Receipt.sha256).where(
        Receipt.sha256.in_(list(sha256s)), Receipt.outcome == Outcome.QUARANTINED
    )
    return set(session.exec(stmt))


def close_receipts(session: Session, *, updates: Sequence[dict]) -> None:
    """Set outcome, unit, period and message of receipts (dicts with `id`), in one statement."""
    if updates:
        session.execute(
            sa.update(Receipt),
            [
                {
                    "id": u["id"],
                    "outcome": u["outcome"],
                    "unit_code": u.get("unit_code"),
                    "period_code": u.get("period_code"),
                    "message": u.get("message", "")[:4000],
                }
                for u in updates
            ],
        )


def existing_content(
    session: Session, *, keys: Iterable[tuple[int, str, str]]
) -> dict[tuple[int, str, str], tuple[int, int, str]]:
    """(period_id, unit, sha256) -> (submission id, version, status) of those already stored."""
    keys = set(keys)
    if not keys:
        return {}
    stmt = select(
        Submission.period_id,
        Submission.unit_code,
        Submission.sha256,
        Submission.id,
        Submission.version,
        Submission.status,
    ).where(Submission.sha256.in_({k[2] for k in keys}))
    return {(p, u, h): (i, v, st) for p, u, h, i, v, st in session.exec(stmt) if (p, u, h) in keys}


def latest_versions(
    session: Session, *, pairs: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], int]:
    """(period_id, unit) -> highest stored version, for all the pairs in one query."""
    pairs = set(pairs)
    if not pairs:
        return {}
    stmt = (
        select(Submission.period_id, Submission.unit_code, func.max(Submission.version))
        .where(
            Submission.period_id.in_({p for p, _ in pairs}),
            Submission.unit_code.in_({u for _, u in pairs}),
        )
        .group_by(Submission.period_id, Submission.unit_code)
    )
    return {(p, u): v for p, u, v in session.exec(stmt) if (p, u) in pairs}


def insert_submissions(session: Session, *, rows: Sequence[dict]) -> list[int]:
    """Bulk insert; the new ids in the order of `rows`."""
    if not rows:
        return []
    result = session.execute(
        sa.insert(Submission).returning(Submission.id, sort_by_parameter_order=True), list(rows)
    )
    return [r[0] for r in result]


def add_values(session: Session, *, rows: Sequence[dict]) -> None:
    if rows:
        session.execute(sa.insert(SubmissionValue), list(rows))


def add_findings(session: Session, *, findings: Sequence[dict]) -> None:
    if findings:
        session.execute(sa.insert(Finding), list(findings))


def findings_by_submission(
    session: Session, *, submission_ids: Sequence[int]
) -> dict[int, list[Finding]]:
    """Findings of these submissions, grouped by submission, in one query."""
    out: dict[int, list[Finding]] = {}
    if submission_ids:
        stmt = (
            select(Finding)
            .where(Finding.submission_id.in_(list(submission_ids)))
            .order_by(Finding.id)
        )
        for f in session.exec(stmt):
            out.setdefault(f.submission_id, []).append(f)
    return out


SUBMISSION_COLUMNS = [
    "submission_id",
    "unit",
    "version",
    "received_at",
    "late",
    "status",
    "errors",
    "warnings",
]


def submissions_frame(session: Session, *, period_id: int) -> pd.DataFrame:
    """Every submission of the period with its error/warning counts, one row each."""
    stmt = (
        select(
            Submission.id,
            Submission.unit_code,
            Submission.version,
            Submission.received_at,
            Submission.late,
            Submission.status,
            func.count(Finding.id).filter(Finding.severity == "error").label("errors"),
            func.count(Finding.id).filter(Finding.severity == "warning").label("warnings"),
        )
        .join(Finding, Finding.submission_id == Submission.id, isouter=True)
        .where(Submission.period_id == period_id)
        .group_by(Submission.id)
        .order_by(Submission.unit_code, Submission.version)
    )
    rows = session.exec(stmt).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=SUBMISSION_COLUMNS)


def values_frame(session: Session, *, submission_ids: Sequence[int]) -> pd.DataFrame:
    """Long table: submission_id, indicator, value_num, value_text, cell."""
    cols = ["submission_id", "indicator", "value_num", "value_text", "cell"]
    if not submission_ids:
        return pd.DataFrame(columns=cols)
    stmt = select(
        SubmissionValue.submission_id,
        SubmissionValue.indicator,
        SubmissionValue.value_num,
        SubmissionValue.value_text,
        SubmissionValue.cell,
    ).where(SubmissionValue.submission_id.in_(list(submission_ids)))
    return pd.DataFrame([tuple(r) for r in session.exec(stmt).all()], columns=cols)


# ---- outbox -----------------------------------------------------------------------------


def enqueue(session: Session, *, messages: Sequence[dict]) -> list[str]:
    """Add messages whose `key` is new; return the keys actually added.

    The key is the intent ("request:2022-Q1:NV:phongnoivu@..."): enqueuing the same intent
    again, from a rerun or after a crash, adds nothing.
    """
    if not messages:
        return []
    keys = [m["key"] for m in messages]
    have = set(session.exec(select(OutboxMessage.key).where(OutboxMessage.key.in_(keys))))
    fresh, seen = [], set()
    for m in messages:
        if m["key"] in have or m["key"] in seen:
            continue
        seen.add(m["key"])
        fresh.append({"created_at": utcnow(), "status": "pending", **m})
        if isinstance(fresh[-1].get("attachments"), list):
            fresh[-1]["attachments"] = json.dumps(fresh[-1]["attachments"], ensure_ascii=False)
    if fresh:
        session.execute(sa.insert(OutboxMessage), fresh)
    return [m["key"] for m in fresh]


def claim_due(
    session: Session,
    *,
    kinds: Sequence[str] | None = None,
    period_code: str | None = None,
    after_id: int = 0,
    limit: int = 500,
    stale_after: dt.timedelta = dt.timedelta(minutes=15),
) -> list[OutboxMessage]:
    """Messages to send now, oldest first from `after_id`: pending, failed, or stuck in
    `sending` longer than `stale_after` (a crash between sending and recording).

    Each is claimed by a conditional UPDATE (status still due), so two deliveries running at
    once never both take the same message; on PostgreSQL locked rows are skipped."""
    now = utcnow()
    due = sa.or_(
        OutboxMessage.status.in_(["pending", "failed"]),
        sa.and_(OutboxMessage.status == "sending", OutboxMessage.sent_at < now - stale_after),
    )
    stmt = select(OutboxMessage.id).where(due, OutboxMessage.id > after_id)
    if kinds:
        stmt = stmt.where(OutboxMessage.kind.in_(list(kinds)))
    if period_code:
        stmt = stmt.where(OutboxMessage.period_code == period_code)
    stmt = stmt.order_by(OutboxMessage.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    claimed = []
    for message_id in list(session.exec(stmt)):
        taken = session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == message_id, due)
            .values(status="sending", attempts=OutboxMessage.attempts + 1, sent_at=now)
        ).rowcount
        if taken:
            claimed.append(message_id)
    if not claimed:
        return []
    return list(
        session.exec(
            select(OutboxMessage).where(OutboxMessage.id.in_(claimed)).order_by(OutboxMessage.id)
        )
    )


def mark_delivery(session: Session, *, message_id: int, ok: bool, error: str = "") -> None:
    row = session.get(OutboxMessage, message_id)
    row.status = "sent" if ok else "failed"
    row.sent_at = utcnow() if ok else None
    row.last_error = "" if ok else error[:2000]
    session.add(row)


OUTBOX_COLUMNS = [
    "id",
    "kind",
    "unit_code",
    "recipient",
    "address",
    "subject",
    "status",
    "attempts",
    "created_at",
    "sent_at",
    "last_error",
    "key",
]


def outbox_frame(session: Session, *, period_code: str | None = None) -> pd.DataFrame:
    """The outbox as a DataFrame, oldest first (columns OUTBOX_COLUMNS; unit_code as `unit`)."""
    stmt = select(*(getattr(OutboxMessage, c) for c in OUTBOX_COLUMNS)).order_by(OutboxMessage.id)
    if period_code:
        stmt = stmt.where(OutboxMessage.period_code == period_code)
    frame = pd.DataFrame([tuple(r) for r in session.exec(stmt).all()], columns=OUTBOX_COLUMNS)
    return frame.rename(columns={"unit_code": "unit"})


# ---- rendered reports -------------------------------------------------------------------


def latest_report(session: Session, *, period_id: int) -> RenderedReport | None:
    stmt = (
        select(RenderedReport)
        .where(RenderedReport.period_id == period_id)
        .order_by(RenderedReport.version.desc())
    )
    return session.exec(stmt).first()


def add_report(session: Session, *, row: RenderedReport) -> RenderedReport:
    session.add(row)
    session.flush()
    return row
