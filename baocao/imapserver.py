"""A real IMAP server on loopback (Dovecot, Debian's `dovecot-imapd`) for the demo and the
tests: the office's mailbox into which the units' replies are delivered with IMAP APPEND.

`LoopbackImap()` writes a Dovecot configuration of its own into a fresh temporary folder
(its base_dir, state, log, passwd-file and Maildir mail under it), starts `dovecot -F -c
<config>` as a child process on a free 127.0.0.1 port, waits for its greeting and stops it
on `stop()` or at the end of a `with` block. Plain-text login is allowed (loopback only).

Dovecot refuses to hand mail to uid 0 and to run its login processes as root, so when this
runs as root the whole server runs as Dovecot's own system user (`dovecot`, else `nobody`),
without chroot; otherwise it runs as the current user. Users live in one passwd-file per
user, read at the user's first login: `add_user()` gives each test its own empty mailbox.
"""

from __future__ import annotations

import contextlib
import email.policy
import grp
import imaplib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

SBIN = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")


class ImapServerError(RuntimeError):
    """The loopback Dovecot could not be started; the message says why (its log's tail)."""


def dovecot_binary() -> str | None:
    """The `dovecot` program, when installed (Debian puts it in /usr/sbin, often not on PATH)."""
    found = shutil.which("dovecot")
    if found:
        return found
    return next((p for p in SBIN if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> pwd.struct_passwd:
    """The account the server runs as: ourselves, or Dovecot's system user when we are root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("dovecot", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ImapServerError("no 'dovecot' or 'nobody' account to run the loopback Dovecot as")


CONFIG = """\
# written by baocao.imapserver: a private Dovecot on loopback, for the demo and the tests
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/passwd/%n
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class LoopbackImap:
    """Dovecot on 127.0.0.1 with a static user; `url` and `password` are what baocao's
    settings need (`BAOCAO_IMAP_URL`, `BAOCAO_IMAP_PASSWORD`)."""

    def __init__(self, user: str = "baocao", password: str | None = None):
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.port = 0
        self.folder: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._account = _run_as()

    # -- life
    def start(self, timeout: float = 30.0) -> LoopbackImap:
        binary = dovecot_binary()
        if binary is None:
            raise ImapServerError(
                "dovecot không được cài / dovecot is not installed: apt-get install dovecot-imapd"
            )
        self.folder = Path(tempfile.mkdtemp(prefix="baocao-imap-"))
        for sub in ("run", "state", "mail", "passwd"):
            (self.folder / sub).mkdir()
        self.port = free_port()
        a = self._account
        (self.folder / "dovecot.conf").write_text(
            CONFIG.format(
                d=self.folder,
                user=a.pw_name,
                group=grp.getgrgid(a.pw_gid).gr_name,
                uid=a.pw_uid,
                gid=a.pw_gid,
                port=self.port,
            )
        )
        self.add_user(self.user, self.password)
        if os.geteuid() == 0:
            for path in [self.folder, *self.folder.rglob("*")]:
                os.chown(path, a.pw_uid, a.pw_gid)
        as_user = {"user": a.pw_uid, "group": a.pw_gid, "extra_groups": []}
        self.proc = subprocess.Popen(
            [binary, "-F", "-c", str(self.folder / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **(as_user if os.geteuid() == 0 else {}),
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        log = self.log_tail()
        self.stop()
        raise ImapServerError(f"Dovecot did not start on 127.0.0.1:{self.port}: {log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> LoopbackImap:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = (self.folder / "dovecot.log").read_text(errors="replace")
        except (OSError, TypeError):
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    # -- users
    def add_user(self, user: str, password: str) -> None:
        """Another mailbox on the same server, with its own empty INBOX."""
        if any(c in user + password for c in ":\n"):
            raise ValueError("user and password may not contain ':' or a line break")
        if not user.replace("-", "").replace("_", "").isalnum():
            raise ValueError("a user name of letters, digits, '-' and '_'")
        path = self.folder / "passwd" / user  # one file per user: read at its first login
        path.write_text(f"{user}:{{PLAIN}}{password}::::::\n")
        if os.geteuid() == 0:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def url_for(self, user: str, folder: str = "INBOX") -> str:
        return f"imap://{user}@127.0.0.1:{self.port}/{folder}?mode=insecure"

    @property
    def url(self) -> str:
        """The `BAOCAO_IMAP_URL` of the static user's INBOX (plain IMAP: loopback only)."""
        return self.url_for(self.user)

    # -- a mail client's side: deliver and look
    def client(self, user: str | None = None, password: str | None = None) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        c.login(user or self.user, password or self.password)
        return c

    def deliver(
        self,
        message: EmailMessage | bytes,
        *,
        folder: str = "INBOX",
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        """Put a message into a folder with IMAP APPEND, as a mail server's delivery would."""
        raw = (
            message
            if isinstance(message, bytes)
            else message.as_bytes(policy=email.policy.SMTP)  # CRLF, as on the wire
        )
        c = self.client(user, password)
        try:
            typ, data = c.append(_quoted(folder), None, None, raw)
            if typ != "OK":
                raise ImapServerError(f"APPEND to {folder} refused: {data}")
        finally:
            c.logout()

    def messages(
        self, folder: str = "INBOX", *, user: str | None = None, password: str | None = None
    ) -> list[bytes]:
        """The raw messages in a folder (empty if it does not exist)."""
        c = self.client(user, password)
        try:
            typ, _ = c.select(_quoted(folder), readonly=True)
            if typ != "OK":
                return []
            typ, data = c.uid("SEARCH", None, "ALL")
            out = []
            for uid in data[0].split():
                typ, fetched = c.uid("FETCH", uid, "(BODY.PEEK[])")
                out += [part[1] for part in fetched if isinstance(part, tuple)]
            return out
        finally:
            c.logout()


def _quoted(name: str) -> str:
    from baocao.mailer import imap_utf7  # the client's encoding of folder names

    return '"' + imap_utf7(name).replace("\\", "\\\\").replace('"', '\\"') + '"'
