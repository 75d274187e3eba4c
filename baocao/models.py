"""The store's tables (SQLModel). Times are stored in UTC; nothing here is ever overwritten
except the delivery status of an outbox message and the decision on a rendered report."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware one")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Outcome(StrEnum):
    """What became of one received file (a receipt)."""

    RECEIVED = "received"  # archived, not yet fully taken in (a rerun finishes it)
    ACCEPTED = "accepted"  # every submission in it is valid
    REJECTED = "rejected"  # stored as a version, with errors told to the unit
    DUPLICATE = "duplicate"  # the same content was already taken in for its unit and period
    UNREADABLE = "unreadable"  # not a form we can read (corrupt, encrypted, wrong type, limits)
    UNIDENTIFIED = "unidentified"  # no unit or period could be told
    UNAUTHORIZED = "unauthorized"  # names a unit without that unit's form code or address
    CLOSED_PERIOD = "closed_period"  # for a period that is not open for this report
    REFUSED = "refused"  # too large or of a type we never read
    QUARANTINED = "quarantined"  # its reading failed MAX_READ_ATTEMPTS times; set aside


class SubmissionStatus(StrEnum):
    VALID = "valid"
    REJECTED = "rejected"


class Credential(StrEnum):
    """How a submission was tied to its unit."""

    TOKEN = "token"  # the request's code, carried by the form (or a CSV column)
    SENDER = "sender"  # mailed from one of the unit's registered addresses
    OPERATOR = "operator"  # filed by the office for the unit (`baocao ingest --unit`)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed under a lease by one delivery run
    SENT = "sent"
    FAILED = "failed"  # retried by the next run


class ReportStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SENT_BACK = "sent_back"
    TIMED_OUT = "timed_out"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(**kw):
    return Field(sa_type=UTCDateTime, **kw)


class ReportingPeriod(SQLModel, table=True):
    __tablename__ = "reporting_period"
    __table_args__ = (sa.UniqueConstraint("report_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(index=True)
    code: str  # "2022-Q1"
    window_start: dt.date
    window_end: dt.date
    unit_deadline: dt.datetime = _ts()
    report_deadline: dt.datetime = _ts()
    opened_at: dt.datetime = _ts()


class CollectionRequest(SQLModel, table=True):
    __tablename__ = "collection_request"
    __table_args__ = (sa.UniqueConstraint("period_id", "unit_code"),)

    id: int | None = Field(default=None, primary_key=True)
    period_id: int = Field(foreign_key="reporting_period.id", index=True)
    unit_code: str
    token: str = Field(index=True, unique=True)  # carried in the form's hidden sheet
    form_path: str
    form_sha256: str
    created_at: dt.datetime = _ts()


class Receipt(SQLModel, table=True):
    """Every file that arrived, archived under its SHA-256 before it was parsed.

    `arrival_key` names one arrival (a claimed inbox file, a mail part): a rerun after a crash
    finds the same receipt and finishes it instead of adding another."""

    id: int | None = Field(default=None, primary_key=True)
    arrival_key: str = Field(unique=True, index=True)
    source: str = "folder"  # folder | mail | cli
    sender: str | None = None  # the mail sender, when it came by mail
    attempts: int = 0  # times its reading was started (a file that kills its reader counts)
    sha256: str = Field(index=True)
    original_name: str
    archive_path: str
    size: int
    received_at: dt.datetime = _ts()
    outcome: str = Field(default=Outcome.RECEIVED, sa_type=sa.String)
    unit_code: str | None = None
    period_code: str | None = None
    message: str = ""


class Submission(SQLModel, table=True):
    """One version of a unit's figures. The same content for the same unit and period is
    one submission however often or however concurrently it arrives (unique key)."""

    __table_args__ = (
        sa.UniqueConstraint("period_id", "unit_code", "version"),
        sa.UniqueConstraint("period_id", "unit_code", "sha256", name="uq_submission_content"),
    )

    id: int | None = Field(default=None, primary_key=True)
    period_id: int = Field(foreign_key="reporting_period.id", index=True)
    unit_code: str = Field(index=True)
    version: int
    receipt_id: int = Field(foreign_key="receipt.id")
    sha256: str  # of the received file
    credential: str = Field(default=Credential.TOKEN, sa_type=sa.String)
    received_at: dt.datetime = _ts()
    late: bool = False
    status: str = Field(sa_type=sa.String)  # SubmissionStatus


class SubmissionValue(SQLModel, table=True):
    __tablename__ = "submission_value"

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    indicator: str
    value_num: float | None = None
    value_text: str | None = None
    cell: str = ""


class Finding(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    receipt_id: int = Field(foreign_key="receipt.id", index=True)
    submission_id: int | None = Field(default=None, foreign_key="submission.id", index=True)
    unit_code: str | None = None
    indicator: str = ""
    cell: str = ""
    rule: str
    severity: str  # error | warning
    message_vi: str
    message_en: str = ""


class OutboxMessage(SQLModel, table=True):
    """One intended message to one address; `key` makes the intent unique."""

    __tablename__ = "outbox_message"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True)
    kind: str  # request | rejection | report | reminder
    period_code: str = ""
    unit_code: str | None = None
    recipient: str  # who, for people: a unit code, an office, a Nơi nhận label
    address: str  # the contact's label (e-mail address or URL without secrets)
    url: str  # Apprise URL template (may contain ${VAR}, resolved at send time)
    subject: str
    body: str
    body_html: str = ""  # the HTML part, when the message has one
    attachments: str = "[]"  # JSON list of paths
    message_id: str = ""  # stable Message-ID: a duplicate that slips through is recognisable
    status: str = Field(default=DeliveryStatus.PENDING, sa_type=sa.String, index=True)
    attempts: int = 0
    last_error: str = ""
    created_at: dt.datetime = _ts()
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    claim_id: str | None = None  # the delivery run holding it while `sending`
    lease_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class RenderedReport(SQLModel, table=True):
    __tablename__ = "rendered_report"
    __table_args__ = (sa.UniqueConstraint("period_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    period_id: int = Field(foreign_key="reporting_period.id", index=True)
    version: int
    content_sha256: str
    folder: str
    files: str  # JSON list of file names in folder
    created_at: dt.datetime = _ts()
    status: str = Field(default=ReportStatus.DRAFT, sa_type=sa.String)
    decided_by: str | None = None
    decided_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    comment: str = ""
    number: str | None = None  # Số given by the approving decision, e.g. "25" (of 25/BC-UBND)
    signed_on: dt.date | None = None  # the signing date printed in the place-date line


class ApprovalCode(SQLModel, table=True):
    """A one-time code sent to one approver's own contacts for one rendered version: a
    decision counts only with it, so reaching the Prefect API is not enough to approve."""

    __tablename__ = "approval_code"

    id: int | None = Field(default=None, primary_key=True)
    report_version_id: int = Field(foreign_key="rendered_report.id", index=True)
    approver: str  # the approver's key in the report's `approval.approvers`
    code_hash: str  # SHA-256 of the code; the code itself is never stored
    created_at: dt.datetime = _ts()
    expires_at: dt.datetime = _ts()
    used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    failed_tries: int = 0
