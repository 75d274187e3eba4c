"""Errors people meet, each as one line naming what to check.

A user's mistake (a config key, a period, a parameter) already carries its own message. A
failure of the machine (the data folder read-only or full, the SQLite file corrupt, PostgreSQL
or the Prefect API down) arrives as a driver's exception; `explain` turns it into a
`SetupError` whose message names the folder, database or URL and what to do. The command
line prints either as one red line (exit 2); a flow ends Failed with the same line.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path


class SetupError(RuntimeError):
    """The store, the disk, the database server or the Prefect API cannot be used as set up;
    the message is one line: what failed, where, and what to check."""


class IncompleteError(Exception):
    """Figures the report needs are missing; the message names the units and indicators."""


class RenderError(Exception):
    """A text of the definition refers to a figure that does not exist."""


class ServerError(RuntimeError):
    """No Prefect server to talk to; the message says which and where its log is."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is meant for the user as it is (no traceback)."""
    from baocao.config import ConfigError
    from baocao.forms import FormError
    from baocao.periods import PeriodError

    return (
        SetupError,
        ConfigError,
        PeriodError,
        FormError,
        IncompleteError,
        RenderError,
        ValueError,
        FileNotFoundError,
        FileExistsError,
        ServerError,
    )


def as_user_error(exc: BaseException) -> BaseException | None:
    """`exc` itself when its message is for the user, a SetupError explaining it when it is a
    known failure of disk, database or API, else None (a bug: keep the traceback)."""
    setup = explain(exc)
    if setup is not None:
        return setup
    return exc if isinstance(exc, user_errors()) else None


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (drivers and pydantic write several)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or repr(exc)


def safe_url(url: str) -> str:
    """A database URL fit to print: the password left out."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url)._replace(password=None).render_as_string(hide_password=False)
    except Exception:  # not a URL sqlalchemy knows: blank out anything between : and @
        return re.sub(r"(//[^:/@]*):[^@]*@", r"\1@", url)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver's exception it wraps (sqlalchemy's `.orig`), its causes and contexts."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]


def _defaults() -> tuple[str | None, Path | None]:
    try:
        from baocao.settings import get_settings

        s = get_settings()
        return safe_url(s.sqlalchemy_url), s.data_dir.resolve()
    except Exception:
        return None, None


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(where: object) -> SetupError:
    return SetupError(
        f"Ổ đĩa đầy / disk full: không ghi được / cannot write {where}; "
        "giải phóng dung lượng rồi chạy lại / free space on that disk, then run again"
    )


def not_writable(where: object, why: str) -> SetupError:
    return SetupError(
        f"Thư mục dữ liệu không ghi được / data folder not writable: {where} ({why}); "
        "cấp quyền ghi cho người chạy baocao, hoặc đặt BAOCAO_DATA_DIR là thư mục ghi được / "
        "make it writable for the user running baocao, or set BAOCAO_DATA_DIR to one that is"
    )


def explain(
    exc: BaseException, *, database: str | None = None, folder: Path | None = None
) -> SetupError | None:
    """A SetupError naming what to check, when `exc` (or what it wraps) is a failure of the
    disk, the database or the Prefect API; None otherwise. `database` (printable URL) and
    `folder` (the data folder) default to the current settings."""
    chain = list(_chain(exc))
    for e in chain:
        if isinstance(e, SetupError):
            return e
    if not any(isinstance(e, OSError | sqlite3.Error | RuntimeError) for e in chain) and not any(
        _is_psycopg_operational(e) for e in chain
    ):
        return None  # a user's mistake or a bug: nothing of the machine to explain
    if database is None or folder is None:
        db, data = _defaults()
        database, folder = database or db, folder or data
    for e in chain:
        if isinstance(e, OSError) and e.errno is not None:
            where = e.filename or folder
            if e.errno in DISK_FULL:
                return disk_full(where)
            if e.errno == errno.EROFS:
                return not_writable(where, "ổ đĩa chỉ đọc / read-only file system")
            if e.errno in (errno.EACCES, errno.EPERM):
                return SetupError(
                    f"Không có quyền / permission denied: {where}; cấp quyền cho người chạy "
                    "baocao / give the user running baocao access to it (data folder: "
                    "BAOCAO_DATA_DIR)"
                )
            if e.errno == errno.EIO:
                return SetupError(
                    f"Lỗi đọc ghi ổ đĩa / disk I/O error at {where}: kiểm tra ổ đĩa / check the disk"
                )
        if isinstance(e, sqlite3.DatabaseError):
            return _explain_sqlite(e, database, folder)
        if _is_psycopg_operational(e):
            lines = [x.strip() for x in str(e).splitlines() if x.strip()] or [repr(e)]
            detail = lines[0].removeprefix("connection failed: ")
            return SetupError(
                f"Không kết nối được PostgreSQL / cannot reach PostgreSQL at {database}: {detail}; "
                "kiểm tra máy chủ đang chạy và BAOCAO_DATABASE_URL / check that the server runs "
                "and BAOCAO_DATABASE_URL"
            )
        if isinstance(e, RuntimeError) and str(e).startswith("Failed to reach API at"):
            return prefect_unreachable(str(e).removeprefix("Failed to reach API at").strip())
    return None


def _nearly_full(folder: Path) -> bool:
    import shutil

    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def _explain_sqlite(e: sqlite3.DatabaseError, database, folder) -> SetupError | None:
    text = str(e).lower()
    if "file is not a database" in text or "malformed" in text:
        return SetupError(
            f"Tệp cơ sở dữ liệu hỏng / the SQLite file is not a valid database: {database} "
            f"({e}); khôi phục từ bản sao lưu / restore it from backup (baocao does not "
            "overwrite it)"
        )
    if "database or disk is full" in text:
        return disk_full(database)
    if "readonly database" in text:
        return not_writable(folder, f"SQLite: {e}")
    if "unable to open database file" in text:
        return not_writable(folder, f"SQLite: {e}")
    if "disk i/o error" in text:
        if folder is not None and _nearly_full(Path(folder)):
            return disk_full(database)  # SQLite in WAL mode reports a full disk as an I/O error
        return SetupError(
            f"Lỗi đọc ghi ổ đĩa / disk I/O error on {database}: kiểm tra ổ đĩa / check the disk"
        )
    if "database is locked" in text:
        return SetupError(
            f"Cơ sở dữ liệu đang bận / {database} is locked by another run for over 30 s: "
            "chờ lần chạy đó xong rồi chạy lại / wait for it to finish, then run again"
        )
    return None


def _is_psycopg_operational(e: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(e, psycopg.OperationalError)


def prefect_unreachable(url: str) -> SetupError:
    return SetupError(
        f"Không kết nối được Prefect / the Prefect API at {url} does not answer: khởi động máy "
        "chủ đó (`baocao serve`) hoặc bỏ PREFECT_API_URL để dùng Prefect tạm thời cục bộ / "
        "start that server (`baocao serve`) or unset PREFECT_API_URL to use a temporary local one"
    )


def require_prefect_api() -> None:
    """Raise SetupError when a Prefect API is configured (PREFECT_API_URL, from the
    environment or the Prefect profile) and does not answer; with none configured, flows
    start a temporary local one by themselves."""
    from prefect.settings import PREFECT_API_URL

    from baocao.prefect_server import healthy

    url = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if url and not healthy(str(url).rstrip("/")):
        raise prefect_unreachable(str(url))


class _QuietUserErrors(logging.Filter):
    """Drops the traceback from a log record whose exception is a user's mistake or an
    unusable store/disk/API: the record's one line says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and as_user_error(exc) is not None:
            record.exc_info = None
            record.exc_text = None
        return True


_QUIET = _QuietUserErrors()


def quiet_user_errors_in_logs() -> None:
    """Prefect logs a traceback for any exception raised in a task or flow run; for a
    user's mistake (a config typo, a template the sandbox refused) that traceback reaches
    the person, in the terminal and in the UI's log. Keep the one line only (idempotent)."""
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)
