"""A real SMTP server on loopback (aiosmtpd) that keeps every message it receives as an .eml
file: the demo's post office, and the tests' witness that messages really travel."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    path: Path
    rcpt: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def attachments(self) -> dict[str, bytes]:
        return {
            p.get_filename(): p.get_payload(decode=True) for p in self.message.iter_attachments()
        }

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part else ""


@dataclass
class _Handler:
    folder: Path
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            n = len(self.received) + 1
            who = re.sub(
                r"[^A-Za-z0-9.@_-]", "_", envelope.rcpt_tos[0] if envelope.rcpt_tos else "unknown"
            )
            path = self.folder / f"{n:03d}_{who}.eml"
            path.write_bytes(envelope.content)
            self.received.append(Received(path, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class MailCatcher:
    """`with MailCatcher(folder) as mc:` then send to `mc.mail_url` (an Apprise mailto base)."""

    def __init__(self, folder: Path, sender: str = "baocao@localhost", port: int | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.sender = sender
        self.handler = _Handler(self.folder)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def mail_url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from={self.sender}&mode=insecure"

    @property
    def received(self) -> list[Received]:
        return list(self.handler.received)

    def __enter__(self) -> MailCatcher:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
