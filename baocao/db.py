"""Engines and sessions, built by factories when a flow or command runs (never at import)."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
import yaml
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlmodel import Session

from baocao.errors import SetupError, explain, safe_url
from baocao.settings import PROJECT_ROOT, Settings

MARKER = ".baocao-store"  # beside the data: which store this folder belongs to, since when
# PostgreSQL advisory lock key ("baocao" in ASCII): one migration at a time per database
MIGRATION_LOCK = 0x62616F63616F


def _sqlite_file(url: str) -> Path | None | bool:
    """The SQLite file of `url`; True for an in-memory SQLite; None for another database."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    if not u.database or u.database == ":memory:" or "mode=memory" in str(u):
        return True
    return Path(u.database)


def in_memory(url: str) -> bool:
    """Whether `url` is an in-memory SQLite database (gone with its engine)."""
    return _sqlite_file(url) is True


def _raise_explained(exc: OSError, folder: Path):
    problem = explain(exc, folder=folder)
    if problem is None:
        raise exc
    raise problem from exc


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data folder and prove it can be written (a few KB), or raise SetupError."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SetupError(
            f"{data_dir}: không phải thư mục / not a folder: BAOCAO_DATA_DIR phải là một thư "
            "mục / must name a folder (a file has that name)"
        ) from None
    except OSError as exc:
        _raise_explained(exc, data_dir)
    probe = data_dir / f".baocao-write-test-{os.getpid()}"
    try:
        with probe.open("wb") as f:
            f.write(b"\0" * 4096)
        probe.unlink()
    except OSError as exc:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
        _raise_explained(exc, data_dir)


def make_engine(settings: Settings, *, foreign_keys: bool = True) -> sa.Engine:
    """An engine for the configured database (no connection yet); the data folder is created
    and checked writable first (SetupError naming it if not)."""
    url = settings.sqlalchemy_url
    prepare_data_dir(settings.data_dir)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # readers never block the writer
            dbapi_conn.isolation_level = None  # transactions are begun below, not by pysqlite
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL: a commit survives the process being killed (what "stored" and
            # "sent" must mean here) without waiting for the disk; a power cut may lose the
            # last few commits, never the store's consistency.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            # Take the write lock when a transaction starts: two runs that read then write
            # (versions, claims) wait for each other instead of failing half way.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True)


def alembic_config(engine: sa.Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def _explained(exc: BaseException, engine: sa.Engine) -> BaseException:
    url = engine.url.render_as_string(hide_password=False)
    path = _sqlite_file(url)
    folder = path.resolve().parent if isinstance(path, Path) else None
    return explain(exc, database=safe_url(url), folder=folder) or exc


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the latest Alembic revision (safe to call on every run). A database
    that cannot be reached, read or written raises SetupError naming what to check."""
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Runs that start together on a fresh database (two workers) would each
                # create alembic_version and the tables, and all but one fail: the others
                # wait here until the first commits, then find the schema at head. (SQLite
                # needs none: every transaction there begins with the write lock.)
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            cfg = alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except Exception as exc:
        problem = _explained(exc, engine)
        if problem is exc:
            raise
        raise problem from exc


def read_marker(data_dir: Path) -> dict | None:
    """The store marker of a data folder, None when there is none (an unreadable one counts
    as a marker naming no database)."""
    path = data_dir / MARKER
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        data = None
    return data if isinstance(data, dict) else {}


def _write_marker(data_dir: Path, database: str, fresh: bool) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    fields = {"database": database, ("initialised_at" if fresh else "first_seen_at"): now}
    text = (
        "# baocao: kho dữ liệu của thư mục này / the store this data folder belongs to.\n"
        "# Nếu kho bị mất: khôi phục từ bản sao lưu. Chỉ xóa tệp này khi muốn bắt đầu một kho\n"
        "# mới, trống (mọi đơn vị sẽ được yêu cầu lại).\n"
        "# If the store is lost, restore it from backup. Delete this file only to start a new,\n"
        "# empty store on purpose (every unit would be asked again).\n"
    ) + yaml.safe_dump(fields, allow_unicode=True, sort_keys=False)
    tmp = data_dir / f"{MARKER}.{os.getpid()}.tmp"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, data_dir / MARKER)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        _raise_explained(exc, data_dir)


def _sqlite_has_schema(path: Path) -> bool | None:
    """Whether the SQLite file holds baocao's schema, read without writing a byte (an empty
    or foreign file stays as found); None when a read-only look is not possible."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        return row is not None
    except sqlite3.DatabaseError as exc:
        text = str(exc).lower()
        if "not a database" in text or "malformed" in text:
            raise
        return None
    finally:
        conn.close()


def _has_schema(engine: sa.Engine) -> bool:
    try:
        path = _sqlite_file(engine.url.render_as_string(hide_password=False))
        if isinstance(path, Path):
            found = _sqlite_has_schema(path)
            if found is not None:
                return found
        with engine.connect() as conn:
            return sa.inspect(conn).has_table("alembic_version")
    except Exception as exc:
        problem = _explained(exc, engine)
        if problem is exc:
            raise
        raise problem from exc


def check_store(engine: sa.Engine, settings: Settings) -> bool | None:
    """Refuse (SetupError) a store that is missing or empty while the data folder's marker
    says one was initialised: a recreated empty store would ask every unit again. Returns
    True when the store is new (empty, no marker), False when it exists, None for an
    in-memory database (no marker kept)."""
    url = settings.sqlalchemy_url
    path = _sqlite_file(url)
    if path is True:
        return None
    present = False if isinstance(path, Path) and not path.exists() else _has_schema(engine)
    marker = read_marker(settings.data_dir)
    if present or marker is None:
        return not present
    label = safe_url(url)
    marker_path = (settings.data_dir / MARKER).resolve()
    when = marker.get("initialised_at") or marker.get("first_seen_at") or "?"
    state = (
        "không còn / missing" if isinstance(path, Path) and not path.exists() else "trống / empty"
    )
    if marker.get("database") in (None, label):
        what = (
            f"Kho dữ liệu {label} (khởi tạo / initialised {when}) nay {state}: khôi phục từ bản "
            "sao lưu / restore it from backup"
        )
    else:
        what = (
            f"Thư mục dữ liệu {settings.data_dir} thuộc kho / belongs to the store "
            f"{marker['database']} (khởi tạo / initialised {when}), nhưng / but {label} {state}: "
            "đặt lại BAOCAO_DATABASE_URL hoặc khôi phục kho đó / set BAOCAO_DATABASE_URL back "
            "or restore that store"
        )
    raise SetupError(
        f"{what}; chỉ khi cố ý bắt đầu kho mới, trống, mới xóa / only to start a new, empty "
        f"store on purpose, delete {marker_path} (mọi đơn vị sẽ được yêu cầu lại / every unit "
        "would be asked again)"
    )


def open_store(settings: Settings) -> sa.Engine:
    """Engine for the configured database, migrated to the latest schema.

    The data folder keeps a marker (`.baocao-store`) naming the store once it is initialised;
    a store that has gone missing or empty since is refused, never silently recreated.
    Problems with the folder, the disk or the database raise SetupError (one line)."""
    engine = make_engine(settings)
    try:
        fresh = check_store(engine, settings)
        if engine.dialect.name == "sqlite":
            # SQLite alters a table by copying it: foreign keys off while migrating, or
            # dropping the old copy of a referenced table fails.
            migration_engine = make_engine(settings, foreign_keys=False)
            try:
                migrate(migration_engine)
            finally:
                migration_engine.dispose()
        else:
            migrate(engine)
        if fresh is not None:
            marker = read_marker(settings.data_dir)
            label = safe_url(settings.sqlalchemy_url)
            if marker is None or marker.get("database") != label:
                _write_marker(settings.data_dir, label, fresh)
    except BaseException:
        engine.dispose()
        raise
    return engine


@contextmanager
def session_scope(engine: sa.Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise
