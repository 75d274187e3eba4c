"""Typed notices: every message baocao sends, built one way and queued one way.

A `Notice` is one message to one recipient (a unit, a head, an office, a Nơi nhận, an
approver) under one intent key: its kind, subject, plain text, HTML, attachments. It is made
by `build_notice`, which renders the kind's ONE template, `templates/messages/<kind>.j2`,
twice: once for the subject and the plain-text part, once for the HTML part, in the same
sandboxed environment (`baocao.templating.make_env`) with autoescape off for the text and on
for the HTML, so a unit's file name or text can never become markup. Every kind's template
extends `messages/_layout.j2`, which writes the greeting, the signature and, at the foot of
every message, the person to ask (`body.yaml: contact_person`, or the report's own), and
adds English after the Vietnamese only when `body.yaml: languages` asks for it.

`queue_notices(session, notices)` turns notices into outbox rows (one per contact, `body` =
the text, `body_html` = the HTML), adding only intents not queued before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from jinja2 import Environment
from sqlmodel import Session

from baocao import crud
from baocao.config import Config, Contact, ReportDef


class NoticeKind(StrEnum):
    """What a message is; each kind has its template `templates/messages/<kind>.j2`."""

    REQUEST = "request"  # a unit is asked for its figures, its form attached
    REMINDER = "reminder"  # a unit has not sent (or not sent a valid version) yet
    ESCALATION = "escalation"  # a digest of late units for a head or an office
    REJECTION = "rejection"  # a version is not valid: what to fix
    UNREADABLE = "unreadable"  # a file bearing a unit's name could not be read
    RECEIPT = "receipt"  # a valid version was recorded: the figures as recorded
    REPORT = "report"  # the report to a recipient of Nơi nhận
    APPROVAL = "approval"  # a one-time code to an approver
    NOTHING_USABLE = "nothing_usable"  # a mail from a registered address with no usable file

    @property
    def template(self) -> str:
        return f"messages/{self.value}.j2"

    @property
    def outbox_kind(self) -> str:
        """The outbox's `kind` (what a flow delivers): escalations go with the reminders of
        the day, an unreadable file's answer with the rejections."""
        return {
            NoticeKind.ESCALATION: "reminder",
            NoticeKind.UNREADABLE: "rejection",
            NoticeKind.NOTHING_USABLE: "rejection",
        }.get(self, self.value)


@dataclass(frozen=True)
class Notice:
    """One message to one recipient, ready for the outbox."""

    kind: NoticeKind
    key: str  # the intent: queued once, whatever reruns (`force_tag` makes a new one)
    recipient: str  # who: a unit code, `head:NV`, an office key, a Nơi nhận label
    contacts: tuple[Contact, ...]
    subject: str
    text: str  # the plain-text part, lines kept
    html: str  # the HTML part, from the same template
    attachments: tuple[str, ...] = ()
    period: str = ""  # period code(s) it is about
    unit: str | None = None  # the unit it is about, when one
    force_tag: str | None = None

    def outbox_rows(self) -> list[dict]:
        """One outbox row per contact, keyed `<key>:<contact>[:force:<tag>]`."""
        tail = f":force:{self.force_tag}" if self.force_tag else ""
        return [
            {
                "key": f"{self.key}:{c.label}{tail}",
                "kind": self.kind.outbox_kind,
                "period_code": self.period,
                "unit_code": self.unit,
                "recipient": self.recipient,
                "address": c.label,
                "url": c.stored,
                "subject": self.subject,
                "body": self.text,
                "body_html": self.html,
                "attachments": list(self.attachments),
            }
            for c in self.contacts
        ]


def queue_notices(session: Session, notices: Iterable[Notice]) -> list[str]:
    """Queue the notices in the outbox (in the caller's transaction); returns the keys
    actually added: an intent queued before adds nothing."""
    return crud.enqueue(session, messages=[row for n in notices for row in n.outbox_rows()])


# ---- rendering ---------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _overlays(env: Environment) -> tuple[Environment, Environment]:
    """(text, html) views of the one environment: same loader, sandbox and filters; the
    HTML one escapes every value."""
    return env.overlay(autoescape=False), env.overlay(autoescape=True)


_BLANKS = re.compile(r"\n{3,}")
_SPACES = re.compile(r"\s+")


def tidy_text(text: str) -> str:
    """The text part as a reader sees it: no trailing spaces, at most one blank line in a
    row, one final newline."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def _tidy_html(html: str) -> str:
    return "\n".join(line.rstrip() for line in html.splitlines() if line.strip()) + "\n"


def render_parts(env: Environment, kind: NoticeKind, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) of a kind's template for this context."""
    text_env, html_env = _overlays(env)
    template = text_env.get_template(kind.template)
    subject = _SPACES.sub(" ", template.render(**context, part="subject")).strip()
    text = tidy_text(template.render(**context, part="text"))
    html = html_env.get_template(kind.template).render(**context, subject=subject, part="html")
    return subject, text, _tidy_html(html)


def build_notice(
    env: Environment,
    cfg: Config,
    kind: NoticeKind,
    *,
    key: str,
    recipient: str,
    contacts: Sequence[Contact],
    addressee: str,
    context: dict,
    report: ReportDef | None = None,
    attachments: Sequence[str] = (),
    period: str = "",
    unit: str | None = None,
    force_tag: str | None = None,
) -> Notice:
    """The one way a message is made: the kind's template rendered for `context`, plus what
    every message has (the body, the person to ask, the languages, the addressee)."""
    full = {
        "body": cfg.body,
        "contact": cfg.contact_for(report),
        "languages": cfg.body.languages,
        "report": report,
        "addressee": addressee,
        **context,
    }
    subject, text, html = render_parts(env, kind, full)
    return Notice(
        kind=kind,
        key=key,
        recipient=recipient,
        contacts=tuple(contacts),
        subject=subject,
        text=text,
        html=html,
        attachments=tuple(attachments),
        period=period,
        unit=unit,
        force_tag=force_tag,
    )


# ---- how people are named ----------------------------------------------------------------


def position(title: str, org: str) -> str:
    """A title joined to its organisation without saying a word twice: "Trưởng phòng" +
    "Phòng Nội vụ" -> "Trưởng phòng Nội vụ"; "Chánh Văn phòng" + "Văn phòng HĐND và UBND
    huyện" -> "Chánh Văn phòng HĐND và UBND huyện"; "Chủ tịch UBND xã" + "UBND xã Sơn Dung"
    -> "Chủ tịch UBND xã Sơn Dung"."""
    t, o = title.split(), org.split()
    for n in range(min(len(t), len(o)), 0, -1):
        if [w.casefold() for w in t[-n:]] == [w.casefold() for w in o[:n]]:
            return " ".join(t + o[n:])
    return " ".join(t + o)
