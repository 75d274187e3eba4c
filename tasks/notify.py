"""Compose messages from templates/messages and deliver the outbox through Apprise.

Every message is first written to the outbox under a key naming its intent (`request:...`,
`rejection:<submission>:...`, `report:<period>:v<version>:...`). Delivery claims due rows,
sends each through Apprise, and records sent or failed; a failed one is retried on the next
run, a sent one never again. A crash between the send and the record leaves the row in
`sending`; after 15 minutes it is retried (at-least-once for that narrow window).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import apprise
from jinja2 import Environment
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from baocao import crud
from baocao.config import Contact
from baocao.db import session_scope
from baocao.models import OutboxMessage
from baocao.runtime import Runtime

log = logging.getLogger("baocao.notify")


def compose(env: Environment, template: str, **context) -> tuple[str, str]:
    """(subject, body) from a message template whose first line is the subject."""
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
) -> list[dict]:
    """One outbox row per contact; `force_tag` makes a deliberate resend a new intent."""
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
                "attachments": attachments or [],
            }
        )
    return rows


@dataclass
class Delivery:
    id: int
    ok: bool
    error: str = ""


def send_one(message: OutboxMessage, mail_url: str) -> Delivery:
    """Send one outbox row through Apprise (mail, Telegram, Zalo, ...)."""
    import baocao.zalo  # noqa: F401  registers zalo://

    url = Contact.from_stored(message.url).apprise_url(mail_url)  # secrets filled in only now
    ap = apprise.Apprise()
    if not ap.add(url):
        return Delivery(message.id, False, f"invalid Apprise URL for {message.address}")
    paths = [p for p in json.loads(message.attachments or "[]")]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        return Delivery(message.id, False, f"attachment missing: {', '.join(missing)}")
    attach = apprise.AppriseAttachment(paths) if paths else None
    result = ap.notify(body=message.body, title=message.subject, attach=attach)
    if bool(result):
        return Delivery(message.id, True)
    captured = "; ".join(str(e.message) for e in result.logs() if e.level in ("WARNING", "ERROR"))
    return Delivery(message.id, False, captured or f"delivery to {message.address} failed")


def deliver_outbox(
    engine: Engine,
    *,
    mail_url: str,
    kinds: list[str] | None = None,
    period_code: str | None = None,
    limit: int = 500,
) -> dict[str, int]:
    """Send everything due in the outbox, `limit` claimed at a time, each message tried once
    per call (a failure waits for the next run); return counts of sent and failed."""
    counts, last_id = {"sent": 0, "failed": 0}, 0
    while True:
        with session_scope(engine) as s:
            due = crud.claim_due(
                s, kinds=kinds, period_code=period_code, after_id=last_id, limit=limit
            )
        if not due:
            return counts
        for message in due:
            outcome = send_one(message, mail_url)
            with session_scope(engine) as s:
                crud.mark_delivery(s, message_id=outcome.id, ok=outcome.ok, error=outcome.error)
            counts["sent" if outcome.ok else "failed"] += 1
            if not outcome.ok:
                log.warning(
                    "delivery failed for %s (%s): %s", message.address, message.kind, outcome.error
                )
        last_id = due[-1].id


@task(name="deliver-outbox", retries=2, retry_delay_seconds=30, cache_policy=NO_CACHE)
def deliver_outbox_task(
    rt: Runtime, kinds: list[str] | None = None, period_code: str | None = None
) -> dict[str, int]:
    """Send due outbox messages through Apprise."""
    return deliver_outbox(
        rt.engine, mail_url=rt.settings.mail_url, kinds=kinds, period_code=period_code
    )
