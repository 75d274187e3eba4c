"""A real SMTP server on loopback (aiosmtpd) that keeps every message it receives as an .eml
file: the demo's post office, and the tests' witness that messages really travel.

`MailCatcher(delay=...)` answers each message that many seconds late (a slow server) and
counts the connections it was given; `SilentServer` accepts TCP connections and never says
a word (a hanging server)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    path: Path
    rcpt: list[str]
    message: EmailMessage
    peer: tuple | None = None  # the client's (address, port): one per connection

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
    delay: float = 0.0
    refuse: frozenset[str] = frozenset()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            n = len(self.received) + 1
            who = re.sub(
                r"[^A-Za-z0-9.@_-]", "_", envelope.rcpt_tos[0] if envelope.rcpt_tos else "unknown"
            )
            path = self.folder / f"{n:03d}_{who}.eml"
            path.write_bytes(envelope.content)
            self.received.append(
                Received(path, list(envelope.rcpt_tos), message, tuple(session.peer or ()))
            )
        return "250 Message accepted for delivery"


class _CountingController(Controller):
    """Counts the SMTP connections the server was given (one protocol object each)."""

    connections = 0

    def factory(self):
        self.connections += 1
        return SMTP(self.handler, **self.SMTP_kwargs)


class MailCatcher:
    """`with MailCatcher(folder) as mc:` then send to `mc.mail_url` (BAOCAO_MAIL_URL's form)."""

    def __init__(
        self,
        folder: Path,
        sender: str = "baocao@localhost",
        port: int | None = None,
        delay: float = 0.0,
        refuse: set[str] | frozenset[str] = frozenset(),
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.sender = sender
        self.handler = _Handler(
            self.folder, delay=delay, refuse=frozenset(a.lower() for a in refuse)
        )
        self.controller = _CountingController(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def connections(self) -> int:
        """SMTP connections accepted so far."""
        return self.controller.connections

    @property
    def mail_url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from={self.sender}&mode=insecure"

    @property
    def received(self) -> list[Received]:
        return list(self.handler.received)

    def __enter__(self) -> MailCatcher:
        self.controller.start()
        self.controller.connections = 0  # start() connects once to see the server is up
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class SilentServer:
    """A mail server that hangs: the kernel completes every TCP connection (listen backlog)
    and nothing ever answers, not even the greeting. `with SilentServer() as s:` `s.mail_url`."""

    def __init__(self, sender: str = "baocao@localhost"):
        self.sender = sender
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    @property
    def mail_url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from={self.sender}&mode=insecure"

    def __enter__(self) -> SilentServer:
        self.sock.listen(128)
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
