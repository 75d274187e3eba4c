"""The office's mailbox: the units' replies taken in over IMAP, each message exactly once.

    list (UID) -> fetch -> archive the message -> archive each attachment -> ingest -> answer
    -> move to the processed folder

- **Archived before read.** Each message is written verbatim (`archive/<sha[:2]>/<sha>.eml`)
  before it is parsed, then each attachment verbatim under its own SHA-256, in the same
  archive as the folder's files.
- **One arrival per attachment**, `source="mail"`, `sender` = the From address (lower case),
  keyed `mail:<Message-ID>:<n>:<sha[:12]>:<filename>` (the message's SHA-256 when it has no
  Message-ID): the same message taken in again makes the same receipts, and the content
  key of the store makes no second version.
- **Moved only once committed.** The message leaves for the processed folder (UID MOVE, or
  COPY + \\Deleted + EXPUNGE) only after `ingest_arrivals` returned, i.e. once what it
  carried is stored; a crash in between takes it in again on the next run, with nothing new.
  A message with a file whose reader failed stays for the next run, as in the folder.
- **Nothing usable gets an answer.** A message with no attachment, only a PDF or a photo,
  or only files that cannot be used, is answered through the outbox (once per Message-ID)
  with what is needed and where to get the form, and the unit's own form attached when the
  sender is one of its registered addresses. Only registered addresses of a unit or an
  office are answered, never an unknown sender (spam, backscatter) nor an automatic message
  (auto-reply, bounce, mailing list): those are listed in the run's log and artifact.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.policy
import hashlib
import imaplib
import logging
import mimetypes
import os
import re
import socket
import ssl
import unicodedata
import uuid
from dataclasses import asdict, dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from baocao import crud, vnformat
from baocao.config import Contact, ReportDef
from baocao.db import session_scope
from baocao.errors import SetupError
from baocao.faults import checkpoint
from baocao.mailer import MailUrlError, imap_utf7, make_ssl_context, parse_mail_url, url_query
from baocao.models import Outcome
from baocao.notices import NoticeKind, build_notice
from baocao.periods import Period, as_vn
from baocao.runtime import Runtime
from baocao.settings import Settings
from tasks.identify import build_directory, unit_addresses
from tasks.intake import Arrival, IntakeResult, ingest_arrivals

log = logging.getLogger("baocao.mailbox")

MODES = ("insecure", "starttls", "ssl")
SCHEME_MODE = {"imap": "starttls", "imaps": "ssl"}
DEFAULT_PORT = {"insecure": 143, "starttls": 143, "ssl": 993}
BATCH = 200  # attachments ingested at a time (a message's attachments stay together)
USABLE = {Outcome.ACCEPTED, Outcome.REJECTED, Outcome.DUPLICATE}  # stored, or already was
PICTURES = {".jpg", ".jpeg", ".png", ".gif", ".heic", ".heif", ".webp", ".bmp", ".tif", ".tiff"}


class MailboxError(SetupError):
    """The mailbox cannot be used as set up (address, password, server, folder): one line
    naming what failed and what to check."""


# ---- settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """Where the replies arrive: one folder of one IMAP account."""

    host: str
    port: int
    mode: str  # insecure | starttls | ssl
    user: str
    folder: str = "INBOX"
    processed: str = "baocao-processed"
    timeout: float = 30.0
    verify: bool = True

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"


def parse_imap_url(url: str, *, processed: str = "baocao-processed", timeout: float = 30.0):
    """The account of BAOCAO_IMAP_URL: `imaps://USER@HOST[:PORT]/FOLDER` (TLS),
    `imap://...` (STARTTLS), `?mode=insecure|starttls|ssl`, `?verify=no`. A user that is an
    e-mail address may be written as it is (`imaps://baocao@x.gov.vn@mail.x.gov.vn/INBOX`)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise MailboxError(f"BAOCAO_IMAP_URL không đọc được / cannot be read: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEME_MODE:
        raise MailboxError(
            f"BAOCAO_IMAP_URL: '{scheme}://' không dùng được; dùng imaps:// (TLS) hoặc imap:// "
            "/ use imaps:// or imap://"
        )
    query = url_query(parts.query)
    mode = (query.get("mode") or SCHEME_MODE[scheme]).lower()
    if mode not in MODES:
        raise MailboxError(
            f"BAOCAO_IMAP_URL: mode={mode} không hợp lệ; dùng ssl, starttls, insecure"
        )
    if parts.password:
        raise MailboxError(
            "BAOCAO_IMAP_URL không được chứa mật khẩu: đặt mật khẩu vào biến môi trường "
            "BAOCAO_IMAP_PASSWORD hoặc Prefect Secret block 'imap-password' / no password in "
            "the URL"
        )
    user = unquote(parts.username or "") or query.get("user", "")
    if not parts.hostname or not user:
        raise MailboxError(
            "BAOCAO_IMAP_URL cần người dùng và máy chủ, ví dụ imaps://baocao@mail.x.gov.vn/INBOX "
            "/ needs a user and a host"
        )
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if folder == processed:
        raise MailboxError(
            f"thư mục đã xử lý '{processed}' trùng thư mục nhận thư; đổi "
            "BAOCAO_IMAP_PROCESSED_FOLDER / the processed folder is the folder read"
        )
    verify = query.get("verify", "yes").lower() not in ("no", "false", "0", "off")
    return Account(
        host=parts.hostname,
        port=port or DEFAULT_PORT[mode],
        mode=mode,
        user=user,
        folder=folder,
        processed=processed,
        timeout=timeout,
        verify=verify,
    )


def account_from(settings: Settings) -> Account:
    if not settings.imap_url:
        raise MailboxError("chưa đặt BAOCAO_IMAP_URL / no mailbox configured")
    return parse_imap_url(
        settings.imap_url,
        processed=settings.imap_processed_folder,
        timeout=settings.imap_timeout,
    )


def imap_password(settings: Settings) -> str:
    """The mailbox's password: BAOCAO_IMAP_PASSWORD, else the Prefect Secret block."""
    if settings.imap_password is not None and settings.imap_password.get_secret_value():
        return settings.imap_password.get_secret_value()
    name = settings.imap_password_secret
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(name, _sync=True).get()
    except Exception as exc:  # no block, no Prefect API
        raise MailboxError(
            f"không có mật khẩu hộp thư: đặt BAOCAO_IMAP_PASSWORD hoặc tạo Prefect Secret block "
            f"'{name}' / no mailbox password ({type(exc).__name__})"
        ) from None
    if not isinstance(value, str) or not value:
        raise MailboxError(f"Prefect Secret block '{name}' không chứa mật khẩu / holds no password")
    return value


def _quoted(name: str) -> str:
    text = imap_utf7(name)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- the IMAP session -------------------------------------------------------------------


class Mailbox:
    """One IMAP session on the account's folder, opened for a run."""

    def __init__(self, account: Account, password: str, *, use_move: bool = True):
        self.account, self._password = account, password
        self.use_move = use_move
        self.conn: imaplib.IMAP4 | None = None
        self.capabilities: set[str] = set()
        self.created_processed = False
        self.uidvalidity = ""

    def __enter__(self) -> Mailbox:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        a = self.account
        try:
            context = None if a.mode == "insecure" else make_ssl_context(a.verify)
            if a.mode == "ssl":
                conn = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=context, timeout=a.timeout)
            else:
                conn = imaplib.IMAP4(a.host, a.port, timeout=a.timeout)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(self._unreachable(exc)) from None
        self.conn = conn
        try:
            if a.mode == "starttls":
                if "STARTTLS" not in conn.capabilities:
                    raise MailboxError(
                        f"máy chủ thư {a.host}:{a.port} không hỗ trợ STARTTLS; dùng imaps:// "
                        "trong BAOCAO_IMAP_URL / the server offers no STARTTLS"
                    )
                conn.starttls(ssl_context=context)
            try:
                conn.login(a.user, self._password)
            except imaplib.IMAP4.error as exc:
                raise MailboxError(
                    f"máy chủ thư {a.host}:{a.port} từ chối đăng nhập của {a.user} "
                    f"({_text(exc)}); kiểm tra người dùng trong BAOCAO_IMAP_URL và mật khẩu "
                    "BAOCAO_IMAP_PASSWORD / login refused"
                ) from None
            typ, data = conn.select(_quoted(a.folder))
            if typ != "OK":
                raise MailboxError(
                    f"không mở được thư mục '{a.folder}' của hộp thư {a.user}@{a.host} "
                    f"({_text(data)}); kiểm tra BAOCAO_IMAP_URL / folder cannot be opened"
                )
            self.uidvalidity = _text(conn.response("UIDVALIDITY")[1])
            typ, data = conn.capability()
            self.capabilities = set(_text(data).upper().split()) if typ == "OK" else set()
        except MailboxError:
            self.close()
            raise
        except (OSError, imaplib.IMAP4.error) as exc:
            self.close()
            raise MailboxError(self._unreachable(exc)) from None

    def _unreachable(self, exc: BaseException) -> str:
        a = self.account
        if isinstance(exc, socket.timeout | TimeoutError):
            why = f"không trả lời trong {a.timeout:g} s"
        elif isinstance(exc, ssl.SSLError):
            why = f"lỗi TLS ({exc.reason or exc}); thử ?verify=no nếu máy chủ tự ký chứng chỉ"
        else:
            why = f"{type(exc).__name__}: {_text(exc)}"
        return (
            f"không dùng được hộp thư {a.label} ({why}); thư sẽ được nhận ở lần chạy sau / "
            "the mailbox cannot be reached"
        )

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.logout()
            self.conn = None

    def _ok(self, typ: str, data, what: str):
        if typ != "OK":
            raise MailboxError(f"hộp thư {self.account.label}: {what} thất bại ({_text(data)})")
        return data

    def _retried(self, call):
        """`call()` on the session; a connection dropped while the run worked (a server's idle
        logout, a NAT timeout) is opened again once, the UIDs still valid."""
        try:
            return call()
        except (OSError, imaplib.IMAP4.abort):
            pass
        except imaplib.IMAP4.error as exc:  # BAD: the server refused the command
            raise MailboxError(self._unreachable(exc)) from None
        validity = self.uidvalidity
        self.close()
        self.open()
        if self.uidvalidity != validity:
            raise MailboxError(
                f"hộp thư {self.account.label} đã đánh số lại thư (UIDVALIDITY) trong lúc chạy; "
                "lần chạy sau sẽ nhận tiếp / the folder was renumbered, the next run goes on"
            )
        try:
            return call()
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(self._unreachable(exc)) from None

    def waiting(self, limit: int) -> list[int]:
        """The UIDs of the folder's messages (not marked deleted), oldest first."""

        def search():
            return self._ok(*self.conn.uid("SEARCH", None, "UNDELETED"), "UID SEARCH")

        data = self._retried(search)
        return sorted(int(u) for u in b" ".join(d or b"" for d in data).split())[:limit]

    def fetch(self, uid: int) -> bytes | None:
        """The message's raw bytes (not marked seen), None if it is gone meanwhile."""

        def fetch():
            return self._ok(*self.conn.uid("FETCH", str(uid), "(BODY.PEEK[])"), "UID FETCH")

        for part in self._retried(fetch):
            if isinstance(part, tuple) and len(part) == 2:
                return part[1]
        return None

    def _ensure_processed(self) -> None:
        name = _quoted(self.account.processed)
        typ, data = self.conn.list('""', name)
        if typ == "OK" and any(d for d in data if d):
            return
        typ, data = self.conn.create(name)
        if typ != "OK" and "exist" not in _text(data).lower():
            raise MailboxError(
                f"không tạo được thư mục '{self.account.processed}' trong hộp thư "
                f"{self.account.label} ({_text(data)}); tạo nó bằng tay hoặc đổi "
                "BAOCAO_IMAP_PROCESSED_FOLDER / cannot create the processed folder"
            )
        self.created_processed = True

    def move(self, uids: list[int]) -> None:
        """Move messages to the processed folder: UID MOVE, else COPY, \\Deleted, EXPUNGE
        (a message moved twice, after a dropped connection, is moved once: a UID no longer
        in the folder is skipped by the server)."""
        if uids:
            self._retried(lambda: self._move(uids))

    def _move(self, uids: list[int]) -> None:
        self._ensure_processed()
        target = _quoted(self.account.processed)
        for i in range(0, len(uids), 100):
            chunk = ",".join(str(u) for u in uids[i : i + 100])
            if self.use_move and "MOVE" in self.capabilities:
                self._ok(*self.conn.uid("MOVE", chunk, target), "UID MOVE")
                continue
            self._ok(*self.conn.uid("COPY", chunk, target), "UID COPY")
            flags = r"(\Deleted)"
            self._ok(*self.conn.uid("STORE", chunk, "+FLAGS.SILENT", flags), "UID STORE")
            if "UIDPLUS" in self.capabilities:  # only these: others' deletions stay theirs
                self._ok(*self.conn.uid("EXPUNGE", chunk), "UID EXPUNGE")
            else:
                self._ok(*self.conn.expunge(), "EXPUNGE")


def _text(data) -> str:
    if isinstance(data, BaseException):
        data = data.args[0] if data.args else str(data)
    if isinstance(data, list | tuple):
        return " ".join(_text(d) for d in data if d is not None)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


# ---- one message ------------------------------------------------------------------------


def archive_bytes(data: bytes, suffix: str, archive_dir: Path) -> tuple[str, Path]:
    """Write `data` to archive/<sha[:2]>/<sha><suffix>, never overwriting; (sha256, path)."""
    sha = hashlib.sha256(data).hexdigest()
    target = archive_dir / sha[:2] / f"{sha}{suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{sha}.{uuid.uuid4().hex[:8]}.part"
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(target)
    return sha, target


@dataclass
class Letter:
    """One message of the mailbox, archived, with an arrival per attachment."""

    uid: int
    sha: str  # of the raw message
    eml: Path  # where it is archived
    key: str  # its Message-ID, or sha256:<sha> without one
    sender: str  # the From address, lower case ("" when it has none)
    subject: str
    sent_at: dt.datetime | None = None
    automatic: str = ""  # why it is an automatic message (never answered), "" if a person's
    arrivals: list[Arrival] = field(default_factory=list)
    copies: int = 0  # attachments already taken in from another copy in this run
    problem: str = ""  # the message itself could not be read


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def _filename(part: EmailMessage, n: int) -> str:
    """The attachment's name as its sender wrote it (RFC 2231 and 2047 decoded), reduced to
    a plain file name; a part without one is named after its type."""
    try:
        name = part.get_filename() or ""
        if "=?" in name:  # an encoded-word inside quotes, as some mailers write it
            name = str(make_header(decode_header(name)))
    except Exception:  # a header too broken to decode
        name = ""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    if not name.strip("."):
        ext = mimetypes.guess_extension(part.get_content_type(), strict=False) or ""
        name = f"tep-dinh-kem-{n}{ext}"
    return name[:200]


def _suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ""


def _automatic(msg: EmailMessage, sender: str, own: set[str]) -> str:
    """Why a message was sent by a machine (RFC 3834 and common practice), or ""."""
    auto = _one_line(msg.get("Auto-Submitted", "")).lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = _one_line(msg.get("Precedence", "")).lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for header in ("X-Autoreply", "X-Autorespond", "List-Id", "List-Unsubscribe"):
        if msg.get(header) is not None:
            return header
    if msg.get_content_type() == "multipart/report":
        return "báo lỗi chuyển thư / delivery report"
    if _one_line(msg.get("Return-Path", "")) == "<>":
        return "Return-Path: <>"
    local = sender.partition("@")[0]
    if local in ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply"):
        return sender
    if sender in own:
        return "thư của chính baocao / our own message"
    return ""


def read_letter(raw: bytes, uid: int, archive_dir: Path, own: set[str] = frozenset()) -> Letter:
    """Archive the message verbatim, then read it: sender, subject and an arrival per
    attachment, each attachment archived verbatim under its own SHA-256 first."""
    sha, eml = archive_bytes(raw, ".eml", archive_dir)  # before anything parses it
    letter = Letter(uid, sha, eml, f"sha256:{sha}", "", "")
    try:
        msg = BytesParser(policy=email.policy.default).parsebytes(raw)
        message_id = _one_line(msg.get("Message-ID", ""), 300)
        letter.key = message_id or letter.key
        _, address = parseaddr(_one_line(msg.get("From", ""), 1000))
        letter.sender = address.lower() if "@" in address else ""
        letter.subject = _one_line(msg.get("Subject", ""), 200)
        with contextlib.suppress(Exception):
            letter.sent_at = parsedate_to_datetime(str(msg.get("Date", "")))
        letter.automatic = _automatic(msg, letter.sender, set(own))
        n = 0
        for part in msg.walk():
            if part.is_multipart():
                continue  # a container (a forwarded message's attachments are walked too)
            if not part.get_filename() and part.get_content_disposition() != "attachment":
                continue  # the text of the message, an unnamed inline picture
            n += 1
            name = _filename(part, n)
            data = part.get_payload(decode=True) or b""
            part_sha, stored = archive_bytes(data, _suffix(name), archive_dir)
            key = f"mail:{letter.key}:{n}:{part_sha[:12]}:{name}"
            letter.arrivals.append(
                Arrival(stored, name, key, source="mail", sender=letter.sender or None)
            )
    except Exception as exc:  # the message is archived; tell the office, take in the rest
        letter.problem = f"thư không đọc được ({type(exc).__name__}: {_one_line(exc, 200)})"
    return letter


# ---- answers ----------------------------------------------------------------------------


def registered_senders(rt: Runtime) -> dict[str, str]:
    """Every registered address -> who it belongs to (a unit code, or an office's name):
    the only addresses ever answered."""
    out = {addr: ", ".join(sorted(units)) for addr, units in unit_addresses(rt.cfg).items()}
    for office in rt.cfg.body.offices.values():
        for c in office.contacts:
            if c.email:
                out.setdefault(c.email.lower(), office.name)
    return out


def own_addresses(rt: Runtime) -> set[str]:
    """The addresses baocao sends from: its own messages coming back are never answered."""
    own = {rt.cfg.body.sender_email.lower()}
    with contextlib.suppress(MailUrlError):
        own.add(parse_mail_url(rt.settings.mail_url).from_addr.lower())
    return own


def _reason(name: str, result: IntakeResult) -> str:
    suffix = _suffix(name)
    if suffix == ".pdf":
        return "tệp PDF (bản in hoặc bản quét) không đọc được số liệu"
    if suffix in PICTURES:
        return "ảnh chụp không đọc được số liệu"
    return result.message or str(result.outcome)


@dataclass
class _Context:
    """What answers need, read once per batch."""

    senders: dict[str, str]
    report: ReportDef | None  # of the period opened last, the one an answer points to
    period: Period | None
    deadline: dt.datetime | None
    forms: dict[str, Path]  # unit -> its form for the period, when still on disk


def _context(rt: Runtime) -> _Context:
    d = build_directory(rt)
    senders = registered_senders(rt)
    if not d.periods:
        return _Context(senders, None, None, None, {})
    row = max(d.periods.values(), key=lambda p: (p.opened_at, p.code))
    with session_scope(rt.engine) as s:
        requests = crud.requests_for(s, period_id=row.id)
    forms = {u: Path(r.form_path) for u, r in requests.items() if Path(r.form_path).is_file()}
    report = d.reports[row.report_id]
    return _Context(senders, report, Period.parse(row.code), row.unit_deadline, forms)


def _subject(subject: str) -> str:
    """The subject answered: without its Re:/Fwd:/TL: prefixes (ours adds one)."""
    return re.sub(
        r"^(\s*(re|fw|fwd|tl|tr|aw|sv|trả lời|chuyển tiếp)\s*:\s*)+", "", subject, flags=re.I
    )


def nothing_usable_messages(
    rt: Runtime, letter: Letter, files: list[dict], ctx: _Context, now: dt.datetime
) -> list[dict]:
    """The answer to a registered sender whose message carried nothing usable: what was
    received, what is needed and where to get the form (the unit's own attached)."""
    who = ctx.senders[letter.sender]
    unit = rt.cfg.unit_map.get(who)
    form = ctx.forms.get(unit.code) if unit else None
    last_day = as_vn(ctx.deadline) - dt.timedelta(seconds=1) if ctx.deadline else None
    notice = build_notice(
        rt.env,
        rt.cfg,
        NoticeKind.NOTHING_USABLE,
        key=f"nothing-usable:{ctx.report.id if ctx.report else '-'}:{letter.key}",
        recipient=unit.code if unit else who,
        contacts=[Contact(email=letter.sender)],
        addressee=unit.name if unit else who,
        report=ctx.report,
        context={
            "period": ctx.period,
            "unit": unit,
            "sender": letter.sender,
            "original_subject": _subject(letter.subject),
            "is_reply": bool(_subject(letter.subject)),
            "received": vnformat.date(as_vn(letter.sent_at or now).date()),
            "files": files,
            "form_name": form.name if form else "",
            "deadline": vnformat.date(last_day.date()) if last_day else "",
            "overdue": bool(last_day and now > ctx.deadline),
        },
        attachments=[str(form)] if form else (),
        period=ctx.period.code if ctx.period else "",
        unit=unit.code if unit else None,
    )
    return notice.outbox_rows()


# ---- a run ------------------------------------------------------------------------------


@dataclass
class MailRun:
    """What one run did with the mailbox."""

    results: list[dict] = field(default_factory=list)  # one per attachment (as IntakeResult)
    letters: list[dict] = field(default_factory=list)  # one per message, for the artifact
    unknown: list[str] = field(default_factory=list)  # unregistered senders not answered
    answered: int = 0
    moved: int = 0
    left: int = 0  # messages left for the next run (a reader failed)


def _result_row(r: IntakeResult, letter: Letter) -> dict:
    return {**asdict(r), "source": "mail", "sender": letter.sender}


def _finish_letters(
    rt: Runtime, letters: list[Letter], results: list[IntakeResult], now: dt.datetime, run: MailRun
) -> list[int]:
    """Decide each message's fate once its attachments are stored: answered or not, moved or
    left for the next run. Returns the UIDs to move."""
    by_key: dict[str, list[IntakeResult]] = {}
    for r in results:
        by_key.setdefault(r.arrival, []).append(r)
    ctx: _Context | None = None
    answers: list[dict] = []
    to_move: list[int] = []
    for letter in letters:
        mine = [(a, r) for a in letter.arrivals for r in by_key.get(a.key, [])]
        run.results += [_result_row(r, letter) for _, r in mine]
        row = {
            "uid": letter.uid,
            "from": letter.sender or "(không rõ)",
            "subject": letter.subject,
            "files": len(letter.arrivals),
            "outcomes": ", ".join(sorted({str(r.outcome) for _, r in mine})),
            "answered": "",
            "moved": "",
        }
        run.letters.append(row)
        if any(r.outcome == "retry" for _, r in mine):
            row["answered"] = "chờ lần sau / next run (reader failed)"
            run.left += 1
            continue
        to_move.append(letter.uid)
        row["moved"] = rt.settings.imap_processed_folder
        usable = any(r.outcome in USABLE for _, r in mine)
        if usable or (letter.copies and not letter.arrivals):
            continue  # a form was taken in (or this is another copy of a message taken in)
        files = [{"name": a.name, "reason": _reason(a.name, r)} for a, r in mine]
        if not letter.arrivals:
            note = letter.problem or "thư không có tệp đính kèm"
            run.results.append(
                {
                    **asdict(
                        IntakeResult(
                            f"({letter.subject or 'không tiêu đề'})",
                            Outcome.REFUSED,
                            message=f"Thư của {letter.sender or '(không rõ)'}: {note}.",
                            arrival=f"mail:{letter.key}",
                        )
                    ),
                    "source": "mail",
                    "sender": letter.sender,
                }
            )
        if ctx is None:
            ctx = _context(rt)
        if letter.automatic:
            row["answered"] = f"không: thư tự động / automatic ({letter.automatic})"
        elif letter.sender not in ctx.senders:
            row["answered"] = "không: địa chỉ chưa đăng ký / unknown sender"
            run.unknown.append(letter.sender or "(không rõ)")
        elif _told_already(rt, letter, [r for _, r in mine]):
            row["answered"] = "đã báo tệp không đọc được / told as unreadable"
        else:
            answers += nothing_usable_messages(rt, letter, files, ctx, now)
            row["answered"] = "có / yes"
    if answers:
        with session_scope(rt.engine) as s:
            run.answered += len(crud.enqueue(s, messages=answers))
    return to_move


def _told_already(rt: Runtime, letter: Letter, results: list[IntakeResult]) -> bool:
    """Every file was unreadable and bears a unit's name whose contacts include the sender:
    intake has told that unit already (one message about one mistake)."""
    if not results:
        return False
    for r in results:
        unit = rt.cfg.unit_map.get(r.unit)
        if r.outcome != Outcome.UNREADABLE or unit is None:
            return False
        if letter.sender not in {(c.email or "").lower() for c in unit.contacts}:
            return False
    return True


def take_mailbox(
    rt: Runtime,
    *,
    now: dt.datetime,
    password: str | None = None,
    use_move: bool = True,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
) -> MailRun:
    """Take in the mailbox's messages: archive, ingest in batches, answer what carried
    nothing usable, and move each message once what it carried is committed."""
    logger = logger or log
    account = account_from(rt.settings)
    password = password if password is not None else imap_password(rt.settings)
    archive = rt.settings.archive_dir
    own = own_addresses(rt)
    run = MailRun()
    seen: set[str] = set()  # arrival keys of this run: two copies of a message count once
    with Mailbox(account, password, use_move=use_move) as box:
        uids = box.waiting(rt.settings.imap_max_messages)
        batch: list[Letter] = []
        size = 0
        for uid in uids:
            raw = box.fetch(uid)
            if raw is None:
                continue  # gone meanwhile (another client moved it)
            letter = read_letter(raw, uid, archive, own)
            fresh = [a for a in letter.arrivals if a.key not in seen]
            letter.copies = len(letter.arrivals) - len(fresh)
            letter.arrivals = fresh
            seen |= {a.key for a in fresh}
            batch.append(letter)
            size += len(fresh)
            if size >= BATCH:
                _take_batch(rt, box, batch, now, run)
                batch, size = [], 0
        if batch:
            _take_batch(rt, box, batch, now, run)
    if run.unknown:
        logger.warning(
            "thư từ địa chỉ chưa đăng ký, không trả lời / not answered, unknown senders: %s",
            ", ".join(sorted(set(run.unknown))),
        )
    logger.info(
        "hộp thư %s: %d thư, %d tệp, %d trả lời, %d chuyển sang %s, %d để lại lần sau",
        account.label,
        len(run.letters),
        sum(row["files"] for row in run.letters),
        run.answered,
        run.moved,
        account.processed,
        run.left,
    )
    return run


def _take_batch(
    rt: Runtime, box: Mailbox, letters: list[Letter], now: dt.datetime, run: MailRun
) -> None:
    checkpoint("mailbox.archived")  # every message and attachment archived, nothing stored
    results = ingest_arrivals(rt, [a for lt in letters for a in lt.arrivals], now=now)
    to_move = _finish_letters(rt, letters, results, now, run)
    checkpoint("mailbox.ingested")  # stored and answered, not yet moved
    box.move(to_move)
    run.moved += len(to_move)


@task(name="read-mailbox", cache_policy=NO_CACHE)
def take_mailbox_task(rt: Runtime, now: dt.datetime) -> dict:
    """Take in the replies waiting in the office's mailbox (BAOCAO_IMAP_URL)."""
    try:
        return {**asdict(take_mailbox(rt, now=now, logger=get_run_logger())), "error": ""}
    except MailboxError as exc:  # one line for the flow to fail with, no task traceback
        return {**asdict(MailRun()), "error": str(exc)}
