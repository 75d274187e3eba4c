"""Our own SMTP client for `email:` contacts: one session per batch, bounded time, proper MIME.

`BAOCAO_MAIL_URL` keeps its format (Apprise's, so existing settings still work)::

    mailto://[user:pass@]host[:port]?from=ADDR&mode=insecure|starttls|ssl[&name=...]

`mailtos://` (STARTTLS by default), `smtp://` (plain by default) and `smtps://` (TLS from the
first byte) are accepted too; `smtp=HOST`, `port=`, `user=`, `pass=`, `verify=no` as in
Apprise. `${VAR}` in the user, password or host is read from the environment when the
connection is made, so no password is ever stored.

A `SmtpTransport` lives for one delivery run: it makes its SSL context once, keeps up to
`sessions` SMTP connections open (one per worker thread) for all the run's messages,
reconnects when the server closed an idle session, and gives the server up for the rest of
the run as soon as it times out or refuses: every message still queued for it then fails at
once with the reason, instead of costing a timeout each.

Each message is built with `email.message.EmailMessage`: a text/plain part that keeps the
body's lines, a text/html alternative (`body_html`, or paragraphs made from the text),
attachments with their MIME types and UTF-8 names, and the outbox entry's stable Message-ID.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.charset
import functools
import hashlib
import html
import math
import mimetypes
import os
import queue
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

SENT, FAILED, DEFERRED = "sent", "failed", "deferred"
MODES = ("insecure", "starttls", "ssl")
DEFAULT_PORT = {"insecure": 25, "starttls": 587, "ssl": 465}
SCHEME_MODE = {"mailto": "insecure", "smtp": "insecure", "mailtos": "starttls", "smtps": "ssl"}


class _Headers(HeaderRegistry):
    """The standard header registry, its classes made once: the stock one builds a new class
    for every header of every message (a third of the time to build a message)."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


_UTF8_B64 = email.charset.Charset("utf-8")
_UTF8_B64.header_encoding = email.charset.BASE64  # whatever another library set globally


class _Policy(EmailPolicy):
    """The default policy, except how non-ASCII Subject and address headers are written.

    Python's folder (3.11, 3.12) can put the space between two words at the seam of two
    encoded-words, where readers drop it ("báo cáo" arrives as "báocáo"); the classic
    `email.header.Header` keeps every space inside its encoded-words. A display name is one
    encoded-word: split in several, Python's own parser reads a space into every seam."""

    def _encoded(self, name: str, value) -> str | None:
        if str(value).isascii():
            return None
        if name.lower() == "subject":
            return Header(str(value), _UTF8_B64, header_name=name).encode(linesep=self.linesep)
        addresses = getattr(value, "addresses", None)
        if addresses and all(a.addr_spec.isascii() for a in addresses):
            fold = self.linesep + " "
            return ("," + fold).join(
                f"{_UTF8_B64.header_encode(a.display_name)}{fold}<{a.addr_spec}>"
                if a.display_name
                else a.addr_spec
                for a in addresses
            )
        return None

    def fold(self, name, value):
        text = self._encoded(name, value)
        return super().fold(name, value) if text is None else f"{name}: {text}{self.linesep}"

    def fold_binary(self, name, value):
        text = self._encoded(name, value)
        if text is None:
            return super().fold_binary(name, value)
        return f"{name}: {text}{self.linesep}".encode("ascii")


BUILD_POLICY = _Policy(header_factory=_Headers())
WIRE_POLICY = BUILD_POLICY.clone(linesep="\r\n")  # CRLF; non-ASCII headers RFC 2047-encoded
MAX_8BIT_LINE = 900  # SMTP allows 998 octets a line; longer lines go quoted-printable


class MailUrlError(ValueError):
    """BAOCAO_MAIL_URL cannot be used; the message names what to change."""


# ---- the mail server ---------------------------------------------------------------------


def expand_env(text: str) -> str:
    """`${VAR}` replaced from the environment; an unset variable is an error, not ""."""

    def value(m: re.Match) -> str:
        if m.group(1) not in os.environ:
            raise MailUrlError(
                f"BAOCAO_MAIL_URL dùng ${{{m.group(1)}}} nhưng biến môi trường {m.group(1)} "
                f"chưa được đặt / environment variable {m.group(1)} is not set"
            )
        return os.environ[m.group(1)]

    return re.sub(r"\$\{(\w+)\}", value, text)


@dataclass(frozen=True)
class MailServer:
    """Where `email:` contacts are sent from. The password is kept as written in the URL
    (`${VAR}` unresolved) and resolved only when a session logs in."""

    host: str
    port: int
    mode: str  # insecure | starttls | ssl
    from_addr: str
    from_name: str = ""
    user: str = ""
    password_template: str = field(default="", repr=False)
    verify: bool = True

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def domain(self) -> str:
        return self.from_addr.rpartition("@")[2] or "localhost"

    def resolved(self) -> tuple[str, str, str]:
        """(host, user, password) with `${VAR}` read from the environment now."""
        return expand_env(self.host), expand_env(self.user), expand_env(self.password_template)


def url_query(text: str) -> dict[str, str]:
    """Query parameters, lower-case names, %-decoded but `+` kept (plus addresses)."""
    out = {}
    for pair in filter(None, text.split("&")):
        name, _, value = pair.partition("=")
        out[unquote(name).lower()] = unquote(value)
    return out


def parse_mail_url(url: str) -> MailServer:
    """The server of BAOCAO_MAIL_URL; a malformed URL is a MailUrlError naming the problem."""
    try:
        parts = urlsplit(url.strip())
        port_in_netloc = parts.port
    except ValueError as exc:
        raise MailUrlError(f"BAOCAO_MAIL_URL không đọc được / cannot be read: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEME_MODE:
        raise MailUrlError(
            f"BAOCAO_MAIL_URL: '{scheme}://' không dùng được; dùng mailto://, mailtos://, "
            "smtp:// hoặc smtps:// / use one of these schemes"
        )
    q = url_query(parts.query)
    mode = (q.get("mode") or SCHEME_MODE[scheme]).lower()
    if mode not in MODES:
        raise MailUrlError(
            f"BAOCAO_MAIL_URL: mode={mode} không hợp lệ; dùng insecure, starttls hoặc ssl"
        )
    host = q.get("smtp") or parts.hostname or ""
    if not host:
        raise MailUrlError("BAOCAO_MAIL_URL thiếu tên máy chủ thư / names no mail server host")
    port_text = q.get("port") or ""
    if port_text and not port_text.isdigit():
        raise MailUrlError(f"BAOCAO_MAIL_URL: port={port_text} không phải là số / not a number")
    port = port_in_netloc or (int(port_text) if port_text else DEFAULT_PORT[mode])
    user = unquote(parts.username or "") or q.get("user", "")
    password = unquote(parts.password or "") or q.get("pass", "")
    name, addr = parseaddr(q.get("from", ""))
    if not addr:
        addr = user if "@" in user else f"{user or 'baocao'}@{parts.hostname or host}"
    if "@" not in addr or any(c.isspace() for c in addr):
        raise MailUrlError(f"BAOCAO_MAIL_URL: from={addr} không phải địa chỉ thư / not an address")
    try:
        Address(addr_spec=addr)
    except Exception as exc:
        raise MailUrlError(f"BAOCAO_MAIL_URL: from={addr} không dùng được: {exc}") from None
    verify = q.get("verify", "yes").lower() not in ("no", "false", "0", "off")
    return MailServer(
        host=host,
        port=port,
        mode=mode,
        from_addr=addr,
        from_name=q.get("name") or name,
        user=user,
        password_template=password,
        verify=verify,
    )


def sender_domain(mail_url: str) -> str:
    """The domain of the From address of BAOCAO_MAIL_URL ("localhost" if it cannot be read)."""
    try:
        return parse_mail_url(mail_url).domain
    except MailUrlError:
        return "localhost"


def message_id_for(key: str, domain: str) -> str:
    """The stable Message-ID of an outbox entry: the same intent always carries the same one."""
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        domain = "localhost"
    domain = re.sub(r"[^A-Za-z0-9.-]", "", domain) or "localhost"
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


# ---- messages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One outbox entry to send, as plain data (what a transport needs and nothing more)."""

    id: int
    key: str
    address: str  # the contact's label, for messages and logs
    url: str  # the stored contact: `email:ADDR` or an Apprise URL with `${VAR}` unresolved
    subject: str
    body: str
    body_html: str = ""
    attachments: tuple[str, ...] = ()
    message_id: str = ""
    kind: str = ""

    @property
    def is_email(self) -> bool:
        return self.url.startswith("email:")

    @property
    def to(self) -> str:
        return self.url.removeprefix("email:")


@dataclass(frozen=True)
class Result:
    """What became of one message in this run: sent (the server accepted it), failed (with
    the reason; retried next run) or deferred (not tried: the run's time ran out)."""

    id: int
    status: str  # SENT | FAILED | DEFERRED
    error: str = ""


def text_to_html(text: str) -> str:
    """An HTML page from plain text: escaped, blank-line-separated paragraphs as <p>, single
    line breaks as <br>, leading spaces kept."""
    text = text.replace("\r\n", "\n").strip("\n")
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]

    def line(s: str) -> str:
        stripped = s.lstrip(" ")
        return "&nbsp;" * (len(s) - len(stripped)) + html.escape(stripped)

    body = "\n".join("<p>" + "<br>\n".join(map(line, p.split("\n"))) + "</p>" for p in paragraphs)
    return (
        '<!DOCTYPE html>\n<html lang="vi">\n<head><meta charset="utf-8"></head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _cte(text: str, eight_bit: bool) -> str:
    longest = max((len(x.encode("utf-8")) for x in text.splitlines()), default=0)
    if text.isascii() and longest <= 78:
        return "7bit"
    if eight_bit and longest <= MAX_8BIT_LINE:
        return "8bit"  # readable as it is in any .eml viewer; the server said 8BITMIME
    return "quoted-printable"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def build_message(
    out: Outgoing,
    server: MailServer,
    *,
    eight_bit: bool = True,
    date: dt.datetime | None = None,
) -> EmailMessage:
    """The MIME message of one outbox entry. Raises FileNotFoundError for a missing attachment."""
    msg = EmailMessage(policy=BUILD_POLICY)
    sender = Address(display_name=server.from_name, addr_spec=server.from_addr)
    msg["From"] = sender if server.from_name else server.from_addr
    msg["To"] = out.to
    msg["Subject"] = _one_line(out.subject)
    msg["Date"] = format_datetime(date or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = out.message_id or message_id_for(out.key, server.domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the system
    body = out.body.replace("\r\n", "\n")
    msg.set_content(body, subtype="plain", charset="utf-8", cte=_cte(body, eight_bit))
    page = out.body_html or text_to_html(body)
    msg.add_alternative(page, subtype="html", charset="utf-8", cte=_cte(page, eight_bit))
    for path in map(Path, out.attachments):
        data = path.read_bytes()  # FileNotFoundError: the caller fails this message
        ctype, encoding = mimetypes.guess_type(path.name, strict=False)
        if not ctype or encoding:
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)
    return msg


# ---- transports --------------------------------------------------------------------------


class RunControl:
    """What a delivery run tells its transports while they send: whether the run's time is
    up, and which claimed messages are no longer its own (a lease lost to another run)."""

    def __init__(self, *, budget_seconds: float | None = None):
        self.deadline = time.monotonic() + budget_seconds if budget_seconds else math.inf
        self.lost: set[int] = set()
        self._lock = threading.Lock()

    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def lose(self, ids: Iterable[int]) -> None:
        with self._lock:
            self.lost |= set(ids)

    def may_send(self, message_id: int) -> bool:
        return not self.out_of_time() and message_id not in self.lost


class Transport(Protocol):
    """Sends a batch and yields one Result per message as soon as it is known, so the caller
    records each accepted message at once. `close()` ends the run's sessions."""

    def send(self, messages: Sequence[Outgoing], control: RunControl) -> Iterable[Result]: ...

    def close(self) -> None: ...


class FailingTransport:
    """Every message fails with one reason (e.g. BAOCAO_MAIL_URL cannot be read)."""

    def __init__(self, reason: str):
        self.reason = reason

    def send(self, messages: Sequence[Outgoing], control: RunControl) -> Iterator[Result]:
        for m in messages:
            yield Result(m.id, FAILED, self.reason)

    def close(self) -> None:
        pass


class _ServerDown(Exception):
    """The server timed out, refused, or cannot be logged into: give it up for this run."""


@functools.lru_cache(maxsize=1)
def _ehlo_name() -> str:
    return socket.getfqdn()  # one DNS look-up per process, not one per connection


def make_ssl_context(verify: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:  # verify=no in the URL: a self-signed office server
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class SmtpTransport:
    """Mail to one server over at most `sessions` SMTP connections kept for the whole run."""

    def __init__(
        self,
        server: MailServer,
        *,
        connect_timeout: float = 10.0,
        timeout: float = 10.0,
        sessions: int = 2,
    ):
        self.server = server
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.sessions = max(1, int(sessions))
        self.ssl_context = None if server.mode == "insecure" else make_ssl_context(server.verify)
        self.down: str | None = None  # why the server was given up for this run
        self.connections = 0
        self._slots: list[smtplib.SMTP | None] = [None] * self.sessions
        self._lock = threading.Lock()

    # -- reasons, in the words the outbox keeps
    def _timed_out(self, seconds: float) -> str:
        return (
            f"máy chủ thư {self.server.label} không trả lời trong {seconds:g} s; "
            f"sẽ thử lại ở lần chạy sau / the mail server did not answer within {seconds:g} s"
        )

    def _unreachable(self, exc: BaseException) -> str:
        return (
            f"không kết nối được máy chủ thư {self.server.label} ({_describe(exc)}); "
            "sẽ thử lại ở lần chạy sau / mail server unreachable"
        )

    def _give_up(self, reason: str) -> str:
        with self._lock:
            if self.down is None:
                self.down = reason
        return reason

    # -- sessions
    def _connect(self) -> smtplib.SMTP:
        s = self.server
        try:
            host, user, password = s.resolved()
        except MailUrlError as exc:
            raise _ServerDown(str(exc)) from None
        if s.mode == "ssl":
            smtp = smtplib.SMTP_SSL(
                local_hostname=_ehlo_name(), timeout=self.connect_timeout, context=self.ssl_context
            )
        else:
            smtp = smtplib.SMTP(local_hostname=_ehlo_name(), timeout=self.connect_timeout)
        greeted, step = False, "connect"
        try:
            code, reply = smtp.connect(host, s.port)  # TCP, TLS for ssl, and the greeting
            if code != 220:
                raise _ServerDown(
                    f"máy chủ thư {s.label} không nhận kết nối: {code} {_text(reply)}; "
                    "sẽ thử lại ở lần chạy sau"
                )
            greeted = True
            smtp.sock.settimeout(self.timeout)  # every later reply: the read timeout
            smtp.ehlo_or_helo_if_needed()
            if s.mode == "starttls":
                step = "starttls"
                smtp.starttls(context=self.ssl_context)
                smtp.ehlo()
            if user:
                step = "login"
                smtp.login(user, password)
        except _ServerDown:
            smtp.close()
            raise
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise _ServerDown(
                f"máy chủ thư {s.label} từ chối đăng nhập của {user}: {exc.smtp_code} "
                f"{_text(exc.smtp_error)}; kiểm tra người dùng và mật khẩu trong BAOCAO_MAIL_URL"
            ) from None
        except smtplib.SMTPNotSupportedError:
            smtp.close()
            if step == "starttls":
                raise _ServerDown(
                    f"máy chủ thư {s.label} không hỗ trợ STARTTLS; dùng mode=ssl hoặc "
                    "mode=insecure trong BAOCAO_MAIL_URL"
                ) from None
            raise _ServerDown(
                f"máy chủ thư {s.label} không cho đăng nhập (AUTH) trên kết nối này; dùng "
                "mode=starttls hoặc mode=ssl, hoặc bỏ user:pass khỏi BAOCAO_MAIL_URL"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:  # refused, DNS, TLS, closed, silent
            smtp.close()
            if _is_timeout(exc):
                seconds = self.timeout if greeted else self.connect_timeout
                raise _ServerDown(self._timed_out(seconds)) from None
            raise _ServerDown(self._unreachable(exc)) from None
        with self._lock:
            self.connections += 1
        return smtp

    def _session(self, slot: int) -> smtplib.SMTP:
        if self._slots[slot] is None:
            self._slots[slot] = self._connect()
        return self._slots[slot]

    def _drop(self, slot: int) -> None:
        smtp, self._slots[slot] = self._slots[slot], None
        if smtp is not None:
            smtp.close()  # no QUIT: the server may be the problem

    def _reset(self, slot: int) -> None:
        try:
            self._slots[slot].rset()
        except Exception:
            self._drop(slot)

    def close(self) -> None:
        for slot, smtp in enumerate(self._slots):
            self._slots[slot] = None
            if smtp is None:
                continue
            try:
                smtp.quit()
            except Exception:
                smtp.close()

    # -- sending
    def send(self, messages: Sequence[Outgoing], control: RunControl) -> Iterator[Result]:
        """One result per message, as each is known; the sessions' threads send in parallel."""
        messages = list(messages)
        if not messages:
            return
        work: queue.SimpleQueue[Outgoing] = queue.SimpleQueue()
        for m in messages:
            work.put(m)
        results: queue.SimpleQueue[tuple[int, Result]] = queue.SimpleQueue()
        stop = threading.Event()
        n = min(self.sessions, len(messages))
        # A worker whose message was accepted waits until the caller has taken the result
        # (and recorded it) before it sends another: a kill loses one message per session.
        taken = [threading.Semaphore(0) for _ in range(n)]
        threads = [
            threading.Thread(
                target=self._worker,
                args=(slot, work, results, control, stop, taken[slot]),
                name=f"smtp-{slot}",
                daemon=True,
            )
            for slot in range(n)
        ]
        for t in threads:
            t.start()
        try:
            for _ in messages:
                slot, result = results.get()
                yield result
                taken[slot].release()
        finally:  # the caller stopped early: send nothing more
            stop.set()
            for sem in taken:
                sem.release()
            for t in threads:
                t.join()

    def _worker(self, slot, work, results, control, stop, taken) -> None:
        owed = False  # this session's last acceptance is not yet taken by the caller

        def go_ahead(message_id: int) -> bool:
            """Before another message's content goes out: wait until the last acceptance was
            taken (recorded), then check the run still wants this message sent."""
            nonlocal owed
            if owed:
                taken.acquire()
                owed = False
            return not stop.is_set() and control.may_send(message_id)

        while True:
            try:
                m = work.get_nowait()
            except queue.Empty:
                return
            try:
                if stop.is_set() or not control.may_send(m.id):
                    result = Result(m.id, DEFERRED)
                elif self.down:
                    result = Result(m.id, FAILED, self.down)
                else:
                    result = self._send_one(slot, m, go_ahead)
            except BaseException as exc:  # a bug must not lose a message's result
                self._drop(slot)
                result = Result(m.id, FAILED, f"lỗi khi gửi / error: {_describe(exc)}")
            results.put((slot, result))
            owed = owed or result.status == SENT

    def _send_one(
        self, slot: int, m: Outgoing, go_ahead: Callable[[int], bool] = lambda _: True
    ) -> Result:
        for attempt in (1, 2):
            try:
                smtp = self._session(slot)
            except _ServerDown as exc:
                return Result(m.id, FAILED, self._give_up(str(exc)))
            eight_bit = smtp.has_extn("8bitmime")
            try:
                payload = build_message(m, self.server, eight_bit=eight_bit).as_bytes(
                    policy=WIRE_POLICY
                )
            except FileNotFoundError as exc:
                return Result(m.id, FAILED, f"thiếu tệp đính kèm / attachment missing: {exc}")
            stage = "mail"
            try:
                options = ["BODY=8BITMIME"] if eight_bit else []
                if smtp.has_extn("size"):
                    options.append(f"SIZE={len(payload)}")
                code, reply = smtp.mail(self.server.from_addr, options)
                if code == 421:
                    raise smtplib.SMTPServerDisconnected(_text(reply))
                if code != 250:
                    self._reset(slot)
                    return Result(
                        m.id,
                        FAILED,
                        f"máy chủ thư từ chối người gửi {self.server.from_addr}: {code} "
                        f"{_text(reply)}",
                    )
                stage = "rcpt"
                code, reply = smtp.rcpt(m.to)
                if code == 421:
                    raise smtplib.SMTPServerDisconnected(_text(reply))
                if code not in (250, 251):
                    self._reset(slot)
                    return Result(
                        m.id, FAILED, f"máy chủ thư từ chối địa chỉ {m.to}: {code} {_text(reply)}"
                    )
                if not go_ahead(m.id):  # MAIL and RCPT overlap the caller's record
                    self._reset(slot)
                    return Result(m.id, DEFERRED)
                stage = "data"
                code, reply = smtp.data(payload)
                if code == 250:
                    return Result(m.id, SENT)
                if code == 421:
                    self._drop(slot)
                else:
                    self._reset(slot)
                return Result(m.id, FAILED, f"máy chủ thư không nhận thư: {code} {_text(reply)}")
            except smtplib.SMTPDataError as exc:  # refused DATA before the content went
                self._reset(slot)
                return Result(
                    m.id,
                    FAILED,
                    f"máy chủ thư không nhận thư: {exc.smtp_code} {_text(exc.smtp_error)}",
                )
            except (OSError, smtplib.SMTPException) as exc:  # silent, or connection lost
                self._drop(slot)
                maybe_arrived = (
                    " (nội dung đã gửi đi: thư có thể đã đến, Message-ID giúp nhận ra bản trùng)"
                    if stage == "data"
                    else ""
                )
                if _is_timeout(exc):
                    reason = self._give_up(self._timed_out(self.timeout))
                    return Result(m.id, FAILED, reason + maybe_arrived)
                if stage == "data":  # the content went out: the server may have taken it
                    return Result(
                        m.id,
                        FAILED,
                        f"mất kết nối với máy chủ thư {self.server.label} ({_describe(exc)}); "
                        f"sẽ thử lại ở lần chạy sau{maybe_arrived}",
                    )
                if attempt == 1:
                    continue  # nothing was sent yet: once more on a new session
                return Result(m.id, FAILED, self._give_up(self._unreachable(exc)))
        raise AssertionError("unreachable")


def _is_timeout(exc: BaseException | None) -> bool:
    """A timeout, also when smtplib reports it as a closed connection."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, TimeoutError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def imap_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3): "Đã xử lý" -> "&ARA-a x&H7E- l&AP0-"."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            b64 = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            out.append("&" + b64.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)
