"""The store and its folder under real faults: a lost store is refused, never recreated empty;
a read-only or full disk, a corrupt SQLite file, PostgreSQL or the Prefect API down are each
one SetupError line naming what to check.

Read-only and full disks are real: a tmpfs mounted read-only, or a few hundred KB in size.
Mounting needs root (tests run as root here); elsewhere a read-only folder is made with chmod
when the user cannot override it, and the tests that need a mount are skipped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from baocao.db import MARKER, open_store, read_marker
from baocao.errors import SetupError, explain, require_prefect_api
from baocao.mailcatcher import free_port
from baocao.runtime import build_runtime
from baocao.settings import PROJECT_ROOT, get_settings
from tests.conftest import make_runtime, open_example


def _settings(data: Path, **kw):
    return get_settings(data_dir=data, config_dir=PROJECT_ROOT / "config", **kw)


def _open(data: Path, **kw) -> None:
    open_store(_settings(data, **kw)).dispose()


def _store_files(data: Path) -> list[Path]:
    return [data / n for n in ("baocao.sqlite", "baocao.sqlite-wal", "baocao.sqlite-shm")]


def _refusal(data: Path, **kw) -> str:
    with pytest.raises(SetupError) as exc:
        _open(data, **kw)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# --- the marker: a store once initialised is never silently recreated -----------------------


def test_first_start_marks_the_folder_with_its_store(tmp_path):
    data = tmp_path / "data"
    _open(data)
    marker = read_marker(data)
    assert marker["database"] == f"sqlite:///{(data / 'baocao.sqlite').resolve()}"
    assert "UTC" in marker["initialised_at"]
    _open(data)  # a second start keeps it as it was
    assert read_marker(data) == marker


def test_a_deleted_sqlite_file_is_refused_not_recreated(tmp_path):
    data = tmp_path / "data"
    rt = make_runtime(data)
    open_example(rt)  # requests queued for 14 units: recreating the store would send them again
    rt.engine.dispose()
    for f in _store_files(data):
        f.unlink(missing_ok=True)
    msg = _refusal(data)
    assert str(data.resolve() / "baocao.sqlite") in msg
    assert read_marker(data)["initialised_at"] in msg
    assert "sao lưu / restore it from backup" in msg and str(data.resolve() / MARKER) in msg
    assert not (data / "baocao.sqlite").exists()
    with pytest.raises(SetupError, match="restore it from backup"):  # the runtime too
        make_runtime(data)


def test_an_emptied_sqlite_file_is_refused(tmp_path):
    data = tmp_path / "data"
    _open(data)
    for f in _store_files(data):
        f.unlink(missing_ok=True)
    (data / "baocao.sqlite").write_bytes(b"")  # e.g. copied over by an empty file
    assert "empty" in _refusal(data)
    assert (data / "baocao.sqlite").stat().st_size == 0


def test_deleting_the_marker_starts_a_new_store_on_purpose(tmp_path):
    data = tmp_path / "data"
    _open(data)
    for f in _store_files(data):
        f.unlink(missing_ok=True)
    _refusal(data)
    (data / MARKER).unlink()
    _open(data)
    assert (data / "baocao.sqlite").stat().st_size > 0 and read_marker(data)["initialised_at"]


def test_a_store_from_before_the_marker_gets_one(tmp_path):
    data = tmp_path / "data"
    _open(data)
    (data / MARKER).unlink()
    _open(data)
    marker = read_marker(data)
    assert "first_seen_at" in marker and "initialised_at" not in marker
    for f in _store_files(data):
        f.unlink(missing_ok=True)
    assert marker["first_seen_at"] in _refusal(data)


def test_a_folder_of_another_store_refuses_an_empty_one(tmp_path):
    """The data folder (archive, forms) of store A, now pointed at an empty database B."""
    data = tmp_path / "data"
    _open(data)
    other = tmp_path / "elsewhere.sqlite"
    msg = _refusal(data, database_url=f"sqlite:///{other}")
    assert "elsewhere.sqlite" in msg and "baocao.sqlite" in msg and "BAOCAO_DATABASE_URL" in msg


# --- the SQLite file and the data folder -----------------------------------------------------


@pytest.mark.parametrize("marked", [True, False])
def test_a_corrupt_sqlite_file_is_one_line_and_left_alone(tmp_path, marked):
    data = tmp_path / "data"
    _open(data)
    if not marked:
        (data / MARKER).unlink()
    for f in _store_files(data):
        f.unlink(missing_ok=True)
    garbage = b"this was a database before the disk failed\n" * 100
    (data / "baocao.sqlite").write_bytes(garbage)
    msg = _refusal(data)
    assert "not a valid database" in msg and "baocao.sqlite" in msg and "backup" in msg
    assert (data / "baocao.sqlite").read_bytes() == garbage


def test_a_file_where_the_data_folder_should_be(tmp_path):
    (tmp_path / "data").write_text("not a folder")
    msg = _refusal(tmp_path / "data")
    assert "not a folder" in msg and str(tmp_path / "data") in msg


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A tmpfs mounted at `path` for the block (skip when this machine cannot mount)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def test_a_read_only_data_folder_is_named(tmp_path):
    data = tmp_path / "mnt"
    if _can_mount():
        with tmpfs(data, "size=4m") as mnt:
            _open(mnt)  # an initialised store, then the disk turns read-only
            _remount(mnt, "ro")
            msg = _refusal(mnt)
            assert "read-only file system" in msg
    else:
        data.mkdir()
        data.chmod(0o555)
        if os.access(data, os.W_OK):
            pytest.skip("this user writes into read-only folders and cannot mount one")
        msg = _refusal(data)
        assert "permission denied" in msg
    assert str(data) in msg and "BAOCAO_DATA_DIR" in msg


@pytest.mark.skipif(not _can_mount(), reason="a full disk is a tiny tmpfs: needs root")
def test_a_full_disk_at_the_first_start(tmp_path):
    with tmpfs(tmp_path / "mnt", "size=64k") as mnt:
        msg = _refusal(mnt)
        assert "disk full" in msg and str(mnt) in msg


@pytest.mark.skipif(not _can_mount(), reason="a full disk is a tiny tmpfs: needs root")
def test_a_disk_filling_up_during_a_run(tmp_path, monkeypatch):
    """Opening a period on a disk that fills up: the driver's error becomes one line."""
    with tmpfs(tmp_path / "mnt", "size=2m") as mnt:
        monkeypatch.setenv("BAOCAO_DATA_DIR", str(mnt))
        rt = make_runtime(mnt)
        with pytest.raises(OSError) as full, (mnt / "filler").open("wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        assert full.value.errno == errno.ENOSPC
        with pytest.raises(Exception) as exc:
            open_example(rt)
        rt.engine.dispose()
        problem = explain(exc.value)
        assert problem is not None and "disk full" in str(problem)
        assert str(mnt) in str(problem)


# --- database and API servers ----------------------------------------------------------------


def test_postgresql_that_does_not_answer(tmp_path):
    port = free_port()
    url = f"postgresql://postgres:s3cret@127.0.0.1:{port}/test"
    msg = _refusal(tmp_path / "data", database_url=url)
    assert f"postgresql+psycopg://postgres@127.0.0.1:{port}/test" in msg
    assert "Connection refused" in msg and "s3cret" not in msg


@pytest.mark.integration
def test_an_emptied_postgresql_schema_is_refused(tmp_path):
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=5, autocommit=True
        )
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable (CI is set): {exc}")
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    schema = f"baocao_test_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    data = tmp_path / "data"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            rt = build_runtime(
                report_id="cchc-quarterly", settings=_settings(data, database_url=url)
            )
            open_example(rt)
            rt.engine.dispose()
            assert read_marker(data)["database"] == url
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')  # a restore gone wrong
            admin.execute(f'CREATE SCHEMA "{schema}"')
            msg = _refusal(data, database_url=url)
            assert url in msg and "restore it from backup" in msg
            engine = sa.create_engine(url)
            with engine.connect() as conn:  # nothing was recreated in the empty schema
                assert not sa.inspect(conn).has_table("alembic_version")
            engine.dispose()
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_prefect_api_that_does_not_answer(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    with pytest.raises(SetupError) as exc:
        require_prefect_api()
    assert url in str(exc.value) and "PREFECT_API_URL" in str(exc.value)


def test_prefects_own_unreachable_error_is_explained():
    """What Prefect's client raises when a flow starts with the API down."""
    problem = explain(RuntimeError("Failed to reach API at http://127.0.0.1:1/api/"))
    assert problem is not None and "http://127.0.0.1:1/api/" in str(problem)
    assert explain(RuntimeError("something else")) is None
    assert explain(ValueError("a user's mistake")) is None
