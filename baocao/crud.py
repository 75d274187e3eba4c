"""Store access in one place: keyword-only functions over an explicit session.

Bulk paths (submission values, outbox messages) insert many rows per statement and read
back DataFrames, so a province's thousands of units cost a few statements, not thousands.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, func, select

from baocao.mailer import message_id_for, sender_domain
from baocao.models import (
    CollectionRequest,
    DeliveryStatus,
    Finding,
    OutboxMessage,
    Outcome,
    Receipt,
    RenderedReport,
    ReportingPeriod,
    Submission,
    SubmissionStatus,
    SubmissionValue,
    utcnow,
)
from baocao.periods import Period

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


def add_requests(session: Session, *, rows: Sequence[dict]) -> None:
    """Bulk insert of `CollectionRequest` rows."""
    if rows:
        session.execute(sa.insert(CollectionRequest), list(rows))


def token_map(session: Session, *, report_ids: Sequence[str]) -> dict[str, tuple[str, str, str]]:
    """Request token -> (report, unit code, period code) of these reports' requests, to
    recognise returned forms and to let only the unit a form was issued to submit with it."""
    stmt = (
        select(
            CollectionRequest.token,
            ReportingPeriod.report_id,
            CollectionRequest.unit_code,
            ReportingPeriod.code,
        )
        .join(ReportingPeriod, ReportingPeriod.id == CollectionRequest.period_id)
        .where(ReportingPeriod.report_id.in_(list(report_ids)))
    )
    return {token: (report, unit, period) for token, report, unit, period in session.exec(stmt)}


def periods_by_code(
    session: Session, *, report_ids: Sequence[str]
) -> dict[tuple[str, str], ReportingPeriod]:
    """(report, period code) -> the opened period (only these accept submissions)."""
    stmt = select(ReportingPeriod).where(ReportingPeriod.report_id.in_(list(report_ids)))
    return {(r.report_id, r.code): r for r in session.exec(stmt)}


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


def submission_receipts(
    session: Session, *, submission_ids: Sequence[int]
) -> dict[int, tuple[Submission, Receipt]]:
    """Each submission with the receipt of the file it was read from (for `baocao explain`)."""
    if not submission_ids:
        return {}
    stmt = (
        select(Submission, Receipt)
        .join(Receipt, Receipt.id == Submission.receipt_id)
        .where(Submission.id.in_(list(submission_ids)))
    )
    return {sub.id: (sub, rec) for sub, rec in session.exec(stmt).all()}


PREVIOUS_COLUMNS = ["unit", "indicator", "value", "period"]


def previous_values(
    session: Session, *, report_id: str, period_code: str, units: Iterable[str]
) -> pd.DataFrame:
    """The numbers of `units` in the period before `period_code` (2021-Q4 for 2022-Q1), each
    from its unit's latest valid version there: columns unit, indicator, value, period (the
    previous period's code). One query (per 5,000 units); empty when nothing was reported."""
    units = sorted(set(units))
    previous = Period.parse(period_code).previous().code
    rows: list[tuple] = []
    for i in range(0, len(units), _CHUNK):
        chunk = units[i : i + _CHUNK]
        latest = (
            select(Submission.unit_code, func.max(Submission.version).label("version"))
            .join(ReportingPeriod, ReportingPeriod.id == Submission.period_id)
            .where(
                ReportingPeriod.report_id == report_id,
                ReportingPeriod.code == previous,
                Submission.status == SubmissionStatus.VALID,
                Submission.unit_code.in_(chunk),
            )
            .group_by(Submission.unit_code)
            .subquery()
        )
        stmt = (
            select(Submission.unit_code, SubmissionValue.indicator, SubmissionValue.value_num)
            .join(ReportingPeriod, ReportingPeriod.id == Submission.period_id)
            .join(
                latest,
                sa.and_(
                    latest.c.unit_code == Submission.unit_code,
                    latest.c.version == Submission.version,
                ),
            )
            .join(SubmissionValue, SubmissionValue.submission_id == Submission.id)
            .where(
                ReportingPeriod.report_id == report_id,
                ReportingPeriod.code == previous,
                SubmissionValue.value_num.is_not(None),
            )
        )
        rows += [(*r, previous) for r in session.exec(stmt).all()]
    return pd.DataFrame(rows, columns=PREVIOUS_COLUMNS)


# ---- outbox -----------------------------------------------------------------------------
#
# A delivery run claims due messages under its own `claim_id` with a lease (`lease_until`),
# renews the lease while it sends, and records each outcome only while the claim is still its
# own. A message left `sending` with its lease run out belongs to a run that died: it is due
# again ("reclaimed"). Every statement is set-based: one UPDATE per page, per outcome.

DEFAULT_LEASE = dt.timedelta(seconds=120)
_CHUNK = 5000  # ids per IN (...) list, well under SQLite's limit on bound parameters


def enqueue(session: Session, *, messages: Sequence[dict], domain: str | None = None) -> list[str]:
    """Add messages whose `key` is new; return the keys actually added.

    The key is the intent ("request:2022-Q1:NV:phongnoivu@..."): enqueuing the same intent
    again, from a rerun or after a crash, adds nothing. Each new message gets its stable
    Message-ID from its key, `<sha256(key)[:32]@domain>`, the domain being that of the
    configured sender unless given.
    """
    if not messages:
        return []
    keys = list(dict.fromkeys(m["key"] for m in messages))
    have: set[str] = set()
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        have |= set(session.exec(select(OutboxMessage.key).where(OutboxMessage.key.in_(chunk))))
    fresh, seen = [], set()
    for m in messages:
        if m["key"] in have or m["key"] in seen:
            continue
        seen.add(m["key"])
        row = {"created_at": utcnow(), "status": DeliveryStatus.PENDING.value, **m}
        if isinstance(row.get("attachments"), list | tuple):
            row["attachments"] = json.dumps(list(row["attachments"]), ensure_ascii=False)
        if not row.get("message_id"):
            if domain is None:
                domain = _sender_domain()
            row["message_id"] = message_id_for(row["key"], domain)
        fresh.append(row)
    if fresh:
        session.execute(sa.insert(OutboxMessage), fresh)
    return [m["key"] for m in fresh]


def _sender_domain() -> str:
    from baocao.settings import get_settings

    return sender_domain(get_settings().mail_url)


MAX_ATTEMPTS = 20


def _due(now: dt.datetime, lease: dt.timedelta, max_attempts: int = MAX_ATTEMPTS):
    """Pending, failed (fewer than `max_attempts` times: an address that refuses for good
    is not tried forever), or `sending` under a lease that ran out (its run died). A
    `sending` row without a lease was claimed by an older version: due once `lease` has
    passed."""
    m = OutboxMessage
    expired = sa.or_(
        m.lease_until < now,
        sa.and_(m.lease_until.is_(None), sa.or_(m.sent_at.is_(None), m.sent_at < now - lease)),
    )
    return sa.or_(
        m.status == DeliveryStatus.PENDING.value,
        sa.and_(m.status == DeliveryStatus.FAILED.value, m.attempts < max_attempts),
        sa.and_(m.status == DeliveryStatus.SENDING.value, expired),
    )


def _filtered(stmt, kinds: Sequence[str] | None, period_code: str | None):
    if kinds:
        stmt = stmt.where(OutboxMessage.kind.in_(list(kinds)))
    if period_code:
        stmt = stmt.where(OutboxMessage.period_code == period_code)
    return stmt


@dataclass
class Claimed:
    """One page of messages claimed by a delivery run; `reclaimed` are the ids whose previous
    run stopped while sending them (they may have reached their server once)."""

    messages: list[OutboxMessage]
    reclaimed: set[int]


def claim_due(
    session: Session,
    *,
    claim_id: str | None = None,
    lease: dt.timedelta = DEFAULT_LEASE,
    now: dt.datetime | None = None,
    kinds: Sequence[str] | None = None,
    period_code: str | None = None,
    after_id: int = 0,
    limit: int = 500,
    max_attempts: int = MAX_ATTEMPTS,
) -> Claimed:
    """Claim up to `limit` due messages after `after_id`, oldest first, for `claim_id`:
    status `sending`, lease until now + lease, one more attempt.

    Conditional UPDATEs (still due) make two runs at once never take the same message; on
    PostgreSQL rows another run is claiming are skipped (SKIP LOCKED)."""
    now = now or utcnow()
    claim_id = claim_id or uuid.uuid4().hex
    due = _due(now, lease, max_attempts)
    m = OutboxMessage
    stmt = _filtered(select(m.id).where(due, m.id > after_id), kinds, period_code)
    stmt = stmt.order_by(m.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    ids = list(session.exec(stmt))
    if not ids:
        return Claimed([], set())
    values = {
        "status": DeliveryStatus.SENDING.value,
        "claim_id": claim_id,
        "lease_until": now + lease,
        "attempts": m.attempts + 1,
    }
    claim = sa.update(m).where(m.id.in_(ids), due).execution_options(synchronize_session=False)
    reclaimed: set[int] = set()
    # the expired claims first, so they can be told apart from the pending and failed ones
    if session.execute(
        claim.where(m.status == DeliveryStatus.SENDING.value).values(values)
    ).rowcount:
        reclaimed = set(session.exec(select(m.id).where(m.id.in_(ids), m.claim_id == claim_id)))
    session.execute(claim.where(m.status != DeliveryStatus.SENDING.value).values(values))
    rows = session.exec(select(m).where(m.id.in_(ids), m.claim_id == claim_id).order_by(m.id)).all()
    return Claimed(list(rows), reclaimed)


def renew_leases(session: Session, *, claim_id: str, until: dt.datetime) -> int:
    """Extend the lease of the messages this run still holds unsent; how many it holds."""
    m = OutboxMessage
    stmt = (
        sa.update(m)
        .where(m.claim_id == claim_id, m.status == DeliveryStatus.SENDING.value)
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount


def held_ids(session: Session, *, claim_id: str, ids: Iterable[int]) -> set[int]:
    """Of these ids, those still claimed by `claim_id` (sent or not)."""
    ids, out = list(ids), set()
    for i in range(0, len(ids), _CHUNK):
        stmt = select(OutboxMessage.id).where(
            OutboxMessage.id.in_(ids[i : i + _CHUNK]), OutboxMessage.claim_id == claim_id
        )
        out |= set(session.exec(stmt))
    return out


def record_deliveries(
    session: Session | sa.Connection,
    *,
    claim_id: str,
    sent: Sequence[int] = (),
    failed: Sequence[tuple[int, str]] = (),
    deferred: Sequence[int] = (),
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Record outcomes of messages this run still holds (anything another run reclaimed is
    left alone): sent, failed with a reason (retried next run), or deferred (not tried: back
    to pending, or failed if it had failed before, the attempt not counted). Returns how many
    rows each outcome changed. One UPDATE per outcome and reason."""
    m = OutboxMessage
    mine = (m.claim_id == claim_id, m.status == DeliveryStatus.SENDING.value)

    def update(ids: Sequence[int], **values) -> int:
        n = 0
        for i in range(0, len(ids), _CHUNK):
            stmt = (
                sa.update(m)
                .where(m.id.in_(list(ids[i : i + _CHUNK])), *mine)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            n += session.execute(stmt).rowcount
        return n

    counts = {"sent": 0, "failed": 0, "deferred": 0}
    if sent:
        counts["sent"] = update(
            sent,
            status=DeliveryStatus.SENT.value,
            sent_at=now or utcnow(),
            last_error="",
            lease_until=None,
        )
    by_reason: dict[str, list[int]] = {}
    for message_id, reason in failed:
        by_reason.setdefault((reason or "không rõ lý do / unknown")[:2000], []).append(message_id)
    for reason, ids in by_reason.items():
        counts["failed"] += update(
            ids, status=DeliveryStatus.FAILED.value, last_error=reason, lease_until=None
        )
    if deferred:
        counts["deferred"] = update(
            deferred,
            status=sa.case(
                (m.last_error != "", DeliveryStatus.FAILED.value),
                else_=DeliveryStatus.PENDING.value,
            ),
            attempts=m.attempts - 1,
            claim_id=None,
            lease_until=None,
        )
    return counts


def count_due(
    session: Session,
    *,
    now: dt.datetime | None = None,
    lease: dt.timedelta = DEFAULT_LEASE,
    kinds: Sequence[str] | None = None,
    period_code: str | None = None,
    after_id: int = 0,
    max_attempts: int = MAX_ATTEMPTS,
) -> int:
    """How many messages after `after_id` are due now."""
    stmt = select(func.count(OutboxMessage.id)).where(
        _due(now or utcnow(), lease, max_attempts), OutboxMessage.id > after_id
    )
    return session.exec(_filtered(stmt, kinds, period_code)).one()


SECRET_KINDS = ("approval",)  # their body carries a one-time code
FORGOTTEN = "(Thư có mã một lần đã được gửi; nội dung không lưu lại / sent, not kept)"


def forget_sent_secrets(session: Session) -> int:
    """Once a message carrying a one-time code is sent, its text is not kept in the store."""
    m = OutboxMessage
    return session.execute(
        sa.update(m)
        .where(
            m.kind.in_(SECRET_KINDS),
            m.status == DeliveryStatus.SENT.value,
            m.body != FORGOTTEN,
        )
        .values(body=FORGOTTEN, body_html="")
    ).rowcount


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
    "message_id",
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
