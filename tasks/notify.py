"""Deliver the outbox, each message once. (Messages are built as typed notices in
`tasks.messages` and queued by `baocao.notices.queue_notices`.)

Every message is first written to the outbox under a key naming its intent (`request:...`,
`rejection:<submission>:...`, `report:<period>:v<version>:...`) with a Message-ID made from
that key. A delivery run then:

1. claims due messages a page at a time under its own claim id and a lease
   (`BAOCAO_OUTBOX_LEASE_SECONDS`), which a background thread renews every third of it while
   the run sends, so a slow run keeps what it claimed and no other run sends it again;
2. sends e-mail through `baocao.mailer` (one SMTP session per worker for the whole run,
   `BAOCAO_SMTP_SESSIONS` of them) and every other contact (Telegram, Zalo, ...) through
   Apprise as plain text;
3. records each message as sent the moment its server accepted it (one short UPDATE), so a
   kill loses at most the messages in flight; failures and what was not tried are recorded
   per page.

Due means pending, failed, or `sending` under a lease that ran out: a run that died. Those
are reclaimed, counted and logged: such a message may have reached its server once, and its
Message-ID makes the duplicate recognisable. A server that times out or refuses is given up
for the rest of the run (its remaining messages fail at once with the reason and are retried
by the next run); `BAOCAO_OUTBOX_BUDGET_SECONDS` bounds a run, leaving the rest pending.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import apprise
from apprise import NotifyFormat
from jinja2 import Environment
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from baocao import crud, faults
from baocao.config import Contact
from baocao.db import session_scope
from baocao.mailer import (
    DEFERRED,
    FAILED,
    SENT,
    FailingTransport,
    MailUrlError,
    Outgoing,
    Result,
    RunControl,
    SmtpTransport,
    Transport,
    parse_mail_url,
)
from baocao.models import OutboxMessage, utcnow
from baocao.runtime import Runtime
from baocao.settings import Settings, get_settings

log = logging.getLogger("baocao.notify")


def compose(env: Environment, template: str, **context) -> tuple[str, str]:
    """(subject, body) from a plain template whose first line is the subject. Messages are
    built as notices now (`tasks.messages`, `baocao.notices`); kept for a caller that is not
    yet one."""
    text = env.get_template(template).render(**context)
    subject, _, body = text.strip("\n").partition("\n")
    return subject.strip(), body.strip() + "\n"


def messages_for(
    *,
    key: str,
    kind: str,
    period_code: str,
    unit_code: str | None,
    recipient: str,
    contacts: Iterable[Contact],
    subject: str,
    body: str,
    attachments: list[str] | None = None,
    force_tag: str | None = None,
    body_html: str = "",
) -> list[dict]:
    """One outbox row per contact; `force_tag` makes a deliberate resend a new intent.
    `body_html` is the message's HTML part (default: made from `body` when sending)."""
    rows = []
    for c in contacts:
        k = f"{key}:{c.label}" + (f":force:{force_tag}" if force_tag else "")
        rows.append(
            {
                "key": k,
                "kind": kind,
                "period_code": period_code,
                "unit_code": unit_code,
                "recipient": recipient,
                "address": c.label,
                "url": c.stored,
                "subject": subject,
                "body": body,
                "body_html": body_html,
                "attachments": attachments or [],
            }
        )
    return rows


# ---- transports --------------------------------------------------------------------------

_UNREACHABLE = re.compile(
    r"timed? ?out|timeout|unreachable|connection (refused|reset|error|aborted)|"
    r"name or service not known|no route to host",
    re.IGNORECASE,
)


def _service_of(url: str) -> str:
    """The server behind an Apprise URL, for giving it up: the scheme, with the host for mail."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() in ("mailto", "mailtos"):
        return f"{scheme}://{rest.split('?')[0].rpartition('@')[2].split('/')[0]}"
    return scheme.lower()


class AppriseTransport:
    """Every channel but our e-mail (tgram://, zalo://, ...) through Apprise, as plain text.
    A service that timed out or could not be reached is given up for the rest of the run."""

    def __init__(self) -> None:
        import baocao.zalo  # noqa: F401  registers zalo://

        self.down: dict[str, str] = {}

    def send(self, messages: Sequence[Outgoing], control: RunControl) -> Iterator[Result]:
        for m in messages:
            service = _service_of(m.url)
            if not control.may_send(m.id):
                yield Result(m.id, DEFERRED)
            elif service in self.down:
                yield Result(m.id, FAILED, self.down[service])
            else:
                result = self._send_one(m)
                if result.status == FAILED and _UNREACHABLE.search(result.error):
                    self.down[service] = (
                        f"{service} không trả lời ({result.error[:300]}); sẽ thử lại ở lần chạy sau"
                    )
                yield result

    def _send_one(self, m: Outgoing) -> Result:
        url = Contact.from_stored(m.url).apprise_url("")  # secrets filled in only now
        ap = apprise.Apprise()
        if not ap.add(url):
            return Result(m.id, FAILED, f"địa chỉ Apprise không hợp lệ / invalid URL: {m.address}")
        missing = [p for p in m.attachments if not Path(p).is_file()]
        if missing:
            return Result(
                m.id, FAILED, f"thiếu tệp đính kèm / attachment missing: {', '.join(missing)}"
            )
        attach = apprise.AppriseAttachment(list(m.attachments)) if m.attachments else None
        result = ap.notify(
            body=m.body, title=m.subject, attach=attach, body_format=NotifyFormat.TEXT
        )
        if bool(result):
            return Result(m.id, SENT)
        captured = "; ".join(
            str(e.message) for e in result.logs() if e.level in ("WARNING", "ERROR")
        )
        return Result(m.id, FAILED, captured or f"gửi tới {m.address} không thành công")

    def close(self) -> None:
        pass


class Router:
    """One transport for the run: e-mail through `mail`, every other channel through `other`."""

    def __init__(self, mail: Transport, other: Transport):
        self.mail, self.other = mail, other

    def send(self, messages: Sequence[Outgoing], control: RunControl) -> Iterator[Result]:
        mails = [m for m in messages if m.is_email]
        others = [m for m in messages if not m.is_email]
        if mails:
            yield from self.mail.send(mails, control)
        if others:
            yield from self.other.send(others, control)

    def close(self) -> None:
        try:
            self.mail.close()
        finally:
            self.other.close()


def make_transport(settings: Settings, *, mail_url: str | None = None) -> Router:
    """The run's transport: our SMTP client for the server of BAOCAO_MAIL_URL, Apprise for the
    rest. A mail URL that cannot be read fails each e-mail with that one clear reason."""
    try:
        server = parse_mail_url(mail_url or settings.mail_url)
    except MailUrlError as exc:
        mail: Transport = FailingTransport(str(exc))
    else:
        mail = SmtpTransport(
            server,
            connect_timeout=settings.smtp_connect_timeout,
            timeout=settings.smtp_timeout,
            sessions=settings.smtp_sessions,
        )
    return Router(mail, AppriseTransport())


def outgoing(row: OutboxMessage) -> Outgoing:
    return Outgoing(
        id=row.id,
        key=row.key,
        kind=row.kind,
        address=row.address,
        url=row.url,
        subject=row.subject,
        body=row.body,
        body_html=row.body_html or "",
        attachments=tuple(json.loads(row.attachments or "[]")),
        message_id=row.message_id or "",
    )


# ---- leases ------------------------------------------------------------------------------


class LeaseKeeper:
    """Renews the run's lease every third of it while the run sends, from its own thread and
    connection. Should the store say a claimed message is no longer the run's (its lease ran
    out while the run stalled, and another run took it), the run stops sending it."""

    def __init__(
        self,
        engine: Engine,
        *,
        claim_id: str,
        lease: dt.timedelta,
        control: RunControl,
        clock: Callable[[], dt.datetime],
        logger: logging.Logger | logging.LoggerAdapter,
    ):
        self.engine, self.claim_id, self.lease = engine, claim_id, lease
        self.control, self.clock, self.log = control, clock, logger
        self.renewals = 0
        self._outstanding: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-lease", daemon=True)

    def track(self, ids: Iterable[int]) -> None:
        with self._lock:
            self._outstanding |= set(ids)

    def done(self, ids: Iterable[int]) -> None:
        with self._lock:
            self._outstanding -= set(ids)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / 3):
            try:
                self.renew()
            except Exception as exc:  # the store is down for a moment: try again next time
                self.log.warning("không gia hạn được lease của lần gửi / lease renewal: %s", exc)

    def renew(self) -> None:
        with session_scope(self.engine) as s:
            held = crud.renew_leases(s, claim_id=self.claim_id, until=self.clock() + self.lease)
        self.renewals += 1
        with self._lock:
            outstanding = set(self._outstanding)
        if held >= len(outstanding):
            return
        with session_scope(self.engine) as s:
            mine = crud.held_ids(s, claim_id=self.claim_id, ids=outstanding)
        with self._lock:
            lost = (outstanding - mine) & self._outstanding
        if lost:
            self.control.lose(lost)
            self.log.warning(
                "%d thư đã bị một lần gửi khác lấy lại sau khi lease hết hạn; lần này không gửi "
                "chúng nữa / lease lost on %d message(s)",
                len(lost),
                len(lost),
            )


# ---- delivery ----------------------------------------------------------------------------


class Recorder:
    """Writes the run's outcomes on one connection kept for the run, each in its own short
    transaction that does not wait for the disk: a commit is then in the database's hands
    and survives a kill of this process, which is what "recorded" must mean here (a power
    cut may lose the last few; those are sent again, with the same Message-ID). PostgreSQL:
    `synchronous_commit = off` for these transactions only; SQLite: the store runs in WAL
    mode with `synchronous = NORMAL` (baocao.db), which is exactly that."""

    def __init__(self, engine: Engine):
        self.dialect = engine.dialect.name
        self.conn = engine.connect()

    def record(self, **outcomes) -> dict[str, int]:
        with self.conn.begin():
            if self.dialect == "postgresql":
                self.conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            return crud.record_deliveries(self.conn, **outcomes)

    def close(self) -> None:
        self.conn.close()


def deliver_outbox(
    engine: Engine,
    *,
    settings: Settings | None = None,
    mail_url: str | None = None,
    kinds: list[str] | None = None,
    period_code: str | None = None,
    limit: int | None = None,
    transport: Transport | None = None,
    clock: Callable[[], dt.datetime] = utcnow,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
) -> dict[str, int]:
    """Send everything due (of these kinds, this period), each message tried at most once per
    run. Returns {sent, failed, reclaimed, deferred}: reclaimed counts messages a previous run
    left `sending` when it stopped (also counted in sent or failed); deferred, those left for
    the next run because this run's time budget ran out.

    `settings` gives the lease, budget, page size and SMTP limits (default: the environment);
    `mail_url` overrides its mail server; `transport` replaces the real ones (tests);
    `clock` is the store's notion of now (tests move it past a lease)."""
    settings = settings or get_settings()
    logger = logger or log
    lease = dt.timedelta(seconds=settings.outbox_lease_seconds)
    page = limit or settings.outbox_page_size
    control = RunControl(budget_seconds=settings.outbox_budget_seconds)
    claim_id = uuid.uuid4().hex
    counts = {"sent": 0, "failed": 0, "reclaimed": 0, "deferred": 0}
    own_transport = transport is None
    transport = transport or make_transport(settings, mail_url=mail_url)
    keeper = LeaseKeeper(
        engine, claim_id=claim_id, lease=lease, control=control, clock=clock, logger=logger
    )
    last_id, stopped_early = 0, False
    recorder = Recorder(engine)
    try:
        with keeper:
            while True:
                if control.out_of_time():
                    stopped_early = True
                    break
                with session_scope(engine) as s:
                    claimed = crud.claim_due(
                        s,
                        claim_id=claim_id,
                        lease=lease,
                        now=clock(),
                        kinds=kinds,
                        period_code=period_code,
                        after_id=last_id,
                        limit=page,
                        max_attempts=settings.outbox_max_attempts,
                    )
                if not claimed.messages:
                    break
                faults.checkpoint("outbox.claimed")
                keeper.track(m.id for m in claimed.messages)
                _report_reclaimed(claimed, counts, logger)
                batch = [outgoing(m) for m in claimed.messages]
                _deliver_batch(
                    recorder, transport, batch, control, keeper, claim_id, clock, counts, logger
                )
                last_id = claimed.messages[-1].id
    finally:
        recorder.close()
        if own_transport:
            transport.close()
    if stopped_early:
        with session_scope(engine) as s:  # due and not reached by this run
            counts["deferred"] += crud.count_due(
                s,
                now=clock(),
                lease=lease,
                kinds=kinds,
                period_code=period_code,
                after_id=last_id,
                max_attempts=settings.outbox_max_attempts,
            )
    with session_scope(engine) as s:
        crud.forget_sent_secrets(s)
    if counts["deferred"]:
        logger.warning(
            "hết thời gian của lần gửi (%g s): %d thư để lại cho lần chạy sau / "
            "run budget spent, %d message(s) left for the next run",
            settings.outbox_budget_seconds,
            counts["deferred"],
            counts["deferred"],
        )
    logger.info(
        "outbox: %(sent)d sent, %(failed)d failed, %(reclaimed)d reclaimed, %(deferred)d deferred",
        counts,
    )
    return counts


def _report_reclaimed(claimed: crud.Claimed, counts: dict, logger) -> None:
    for m in claimed.messages:
        if m.id in claimed.reclaimed:
            counts["reclaimed"] += 1
            logger.warning(
                "Lần gửi trước đã dừng khi đang gửi thư %s tới %s (%s); thư được gửi lại và có "
                "thể đã đến máy chủ một lần, Message-ID %s giúp nhận ra bản trùng / a previous "
                "delivery stopped while sending; it may have reached its server once",
                m.key,
                m.address,
                m.kind,
                m.message_id,
            )


def _deliver_batch(
    recorder: Recorder,
    transport: Transport,
    batch: list[Outgoing],
    control: RunControl,
    keeper: LeaseKeeper,
    claim_id: str,
    clock: Callable[[], dt.datetime],
    counts: dict[str, int],
    logger,
) -> None:
    """Send one claimed page; each acceptance is recorded at once, the rest at the end."""
    pending = {m.id: m for m in batch}
    failed: list[tuple[int, str]] = []
    deferred: list[int] = []
    try:
        for result in transport.send(batch, control):
            message = pending.pop(result.id)
            if result.status == SENT:
                faults.checkpoint("outbox.sent")  # accepted by its server, not yet recorded
                n = recorder.record(claim_id=claim_id, sent=[result.id], now=clock())
                keeper.done([result.id])
                counts["sent"] += 1
                if not n["sent"]:
                    logger.warning(
                        "thư %s đã gửi nhưng lần gửi khác đã lấy lại nó (lease hết hạn); có thể "
                        "có bản trùng, Message-ID %s / sent after its lease was lost",
                        message.key,
                        message.message_id,
                    )
            elif result.status == FAILED:
                failed.append((result.id, result.error))
                if len(failed) <= 20:
                    logger.warning(
                        "không gửi được tới %s (%s): %s",
                        message.address,
                        message.kind,
                        result.error,
                    )
            else:
                deferred.append(result.id)
    finally:  # whatever got no result (the run stopped) goes back as not tried
        deferred += list(pending)
        if failed or deferred:
            n = recorder.record(claim_id=claim_id, failed=failed, deferred=deferred, now=clock())
            counts["failed"] += n["failed"]
            counts["deferred"] += n["deferred"]
            if len(failed) > 20:
                reasons = sorted({reason for _, reason in failed[20:]})
                logger.warning(
                    "%d thư khác không gửi được / more failures: %s",
                    len(failed) - 20,
                    "; ".join(reasons[:3]),
                )
        keeper.done([i for i, _ in failed] + deferred)


@task(name="deliver-outbox", retries=2, retry_delay_seconds=30, cache_policy=NO_CACHE)
def deliver_outbox_task(
    rt: Runtime, kinds: list[str] | None = None, period_code: str | None = None
) -> dict[str, int]:
    """Send due outbox messages: e-mail over SMTP sessions, other channels through Apprise."""
    return deliver_outbox(
        rt.engine,
        settings=rt.settings,
        kinds=kinds,
        period_code=period_code,
        logger=get_run_logger(),
    )


# ---- a run whose messages all failed -------------------------------------------------------


class DeliveryFailed(Exception):
    """Every message a run tried failed (they stay in the outbox for the next run); `summary`
    is what the run did, for the command line to print before the red line."""

    def __init__(self, message: str, summary=None):
        super().__init__(message)
        self.summary = summary

    def __reduce__(self):
        return DeliveryFailed, (str(self), self.summary)


def delivery_failure(what: str, counts: dict, last_error: str) -> str | None:
    """One line when this run tried messages and none went out (None otherwise)."""
    failed = counts.get("failed", 0)
    if counts.get("sent", 0) or not failed:
        return None
    return (
        f"{what}: {failed} thư không gửi được, không thư nào đi (lỗi cuối / last error: "
        f"{last_error or '-'}); thư vẫn trong hộp thư đi: kiểm tra BAOCAO_MAIL_URL rồi chạy lại "
        f"để gửi lại / all {failed} failed, kept in the outbox: check BAOCAO_MAIL_URL and rerun "
        "to retry"
    )
