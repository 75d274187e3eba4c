"""The store's tables (SQLModel). Times are stored in UTC; nothing here is ever overwritten
except the delivery status of an outbox message and the decision on a rendered report."""

from __future__ import annotations

import datetime as dt

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
    """Every file that arrived, archived under its SHA-256 before it was parsed."""

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(index=True)
    original_name: str
    archive_path: str
    size: int
    received_at: dt.datetime = _ts()
    outcome: str  # accepted | rejected | unidentified | unreadable | duplicate | refused
    unit_code: str | None = None
    period_code: str | None = None
    message: str = ""


class Submission(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("period_id", "unit_code", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    period_id: int = Field(foreign_key="reporting_period.id", index=True)
    unit_code: str = Field(index=True)
    version: int
    receipt_id: int = Field(foreign_key="receipt.id")
    received_at: dt.datetime = _ts()
    late: bool = False
    status: str  # valid | rejected


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
    attachments: str = "[]"  # JSON list of paths
    status: str = "pending"  # pending | sending | sent | failed
    attempts: int = 0
    last_error: str = ""
    created_at: dt.datetime = _ts()
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


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
    status: str = "draft"  # draft | approved | sent_back
    decided_by: str | None = None
    decided_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    comment: str = ""
