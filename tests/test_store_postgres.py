"""The store on a real PostgreSQL: the same example, the same figures as on SQLite.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres, database test). Each test run
works in its own schema (baocao_test_<8 hex>), reached through the URL's
`options=-csearch_path=<schema>`, and drops it at the end; other schemas (public included)
are left alone. Without a server the tests are skipped, except in CI (CI set), where they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlmodel import select

from baocao.db import alembic_config, session_scope
from baocao.models import ReportingPeriod, Submission
from baocao.runtime import build_runtime
from baocao.settings import get_settings
from tasks.consolidate import consolidate_period
from tests.conftest import PERIOD, concurrent_intake, ingest_waves, open_example

pytestmark = pytest.mark.integration

HOST, PORT, USER, DATABASE = "127.0.0.1", 5432, "postgres", "test"
UTC = dt.UTC


def _run_example(settings):
    rt = build_runtime(report_id="cchc-quarterly", settings=settings)
    open_example(rt)
    ingest_waves(rt)
    return rt, consolidate_period(rt, PERIOD)


def _admin_connect() -> psycopg.Connection:
    return psycopg.connect(
        host=HOST, port=PORT, user=USER, dbname=DATABASE, connect_timeout=5, autocommit=True
    )


@pytest.fixture(scope="module")
def pg_schema():
    try:
        admin = _admin_connect()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {USER}@{HOST}:{PORT}/{DATABASE}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: the integration database is required)")
        pytest.skip(f"{reason} (set up PostgreSQL or run in CI to exercise this test)")
    schema = f"baocao_test_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield schema
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def on_postgres(pg_schema, tmp_path_factory):
    url = (
        f"postgresql+psycopg://{USER}@{HOST}:{PORT}/{DATABASE}?options=-csearch_path%3D{pg_schema}"
    )
    data_dir = tmp_path_factory.mktemp("pg-data")
    rt, result = _run_example(get_settings(data_dir=data_dir, database_url=url))
    yield rt, result
    rt.engine.dispose()  # no open connection may hold the schema when it is dropped


@pytest.fixture(scope="module")
def on_sqlite(example_runtime):
    """The same example on the default SQLite store (conftest), for comparison."""
    return example_runtime, consolidate_period(example_runtime, PERIOD)


def test_engine_works_in_its_own_schema(on_postgres, pg_schema):
    rt, _ = on_postgres
    assert rt.engine.dialect.name == "postgresql"
    with rt.engine.connect() as conn:
        assert conn.execute(sa.text("select current_schema()")).scalar_one() == pg_schema


def test_alembic_version_in_the_schema(on_postgres, pg_schema):
    rt, _ = on_postgres
    head = ScriptDirectory.from_config(alembic_config(rt.engine)).get_current_head()
    with rt.engine.connect() as conn:
        tables = set(
            conn.execute(
                sa.text("select table_name from information_schema.tables where table_schema = :s"),
                {"s": pg_schema},
            ).scalars()
        )
        version = conn.execute(
            sa.text(f'select version_num from "{pg_schema}".alembic_version')
        ).scalar_one()
    assert "alembic_version" in tables
    assert {"reporting_period", "submission", "submission_value", "receipt"} <= tables
    assert version == head


def test_same_figures_and_versions_as_sqlite(on_postgres, on_sqlite):
    _, pg = on_postgres
    _, lite = on_sqlite
    assert pg.values["tthc_tiep_nhan"] == 145
    assert pg.values["tthc_da_giai_quyet"] == 130
    assert pg.values["tthc_dang_giai_quyet"] == 15
    assert str(pg.values["tc_thu_nsnn_pct"]) == "43.5"
    assert pg.completeness == "14/14"
    assert pg.timeliness == "13/14"
    status = pg.status.set_index("unit")
    assert status.loc["TCKH", "state"] == "valid"
    assert status.loc["TCKH", "version"] == 2
    assert status.loc["TCKH", "versions"] == 2
    assert status.loc["SON-MUA", "on_time"] in (False,)  # late, not unknown (None)

    assert pg.values == lite.values
    columns = ["unit", "state", "version", "versions", "on_time", "errors", "warnings"]
    assert pg.status[columns].to_dict("records") == lite.status[columns].to_dict("records")
    assert pg.missing == lite.missing


def test_timestamps_come_back_aware_utc(on_postgres, pg_schema):
    rt, _ = on_postgres
    with session_scope(rt.engine) as s:
        subs = s.exec(
            select(Submission).where(Submission.unit_code == "TCKH").order_by(Submission.version)
        ).all()
        period = s.exec(select(ReportingPeriod)).one()
    assert [(x.version, x.status) for x in subs] == [(1, "rejected"), (2, "valid")]
    # 14/03/2022 16:40 and 16/03/2022 09:05 in Vietnam (UTC+7)
    expected = [
        dt.datetime(2022, 3, 14, 9, 40, tzinfo=UTC),
        dt.datetime(2022, 3, 16, 2, 5, tzinfo=UTC),
    ]
    for sub, when in zip(subs, expected, strict=True):
        assert sub.received_at.utcoffset() == dt.timedelta(0)
        assert sub.received_at.tzinfo is UTC
        assert sub.received_at == when
    assert period.opened_at == dt.datetime(2022, 3, 7, 1, 0, tzinfo=UTC)
    assert period.opened_at.tzinfo is UTC

    with rt.engine.connect() as conn:
        kinds = dict(
            conn.execute(
                sa.text(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = :s and table_name = 'submission'"
                ),
                {"s": pg_schema},
            ).all()
        )
    assert kinds["received_at"] == "timestamp with time zone"


def test_publish_and_deliver_on_postgres(on_postgres, tmp_path):
    """Render a version, queue it once, deliver it through real SMTP: the outbox on PostgreSQL."""
    import datetime as dt

    from baocao.mailcatcher import MailCatcher
    from tasks.notify import deliver_outbox
    from tasks.publish import queue_report, render_version

    rt, result = on_postgres
    now = dt.datetime(2022, 4, 5, 9, tzinfo=dt.UTC)
    row, new = render_version(rt, result, dt.date(2022, 4, 5), now)
    again, new_again = render_version(rt, result, dt.date(2022, 4, 6), now)
    assert new and not new_again and again.id == row.id
    row.number, row.signed_on = "25", dt.date(2022, 4, 5)  # as an approval gives it
    assert len(queue_report(rt, result, row)) == 6 and queue_report(rt, result, row) == []
    with MailCatcher(tmp_path / "mail") as mail:
        counts = deliver_outbox(rt.engine, mail_url=mail.mail_url, kinds=["report"])
        assert counts == {"sent": 6, "failed": 0, "reclaimed": 0, "deferred": 0}
        assert len(mail.received) == 6
        again = deliver_outbox(rt.engine, mail_url=mail.mail_url, kinds=["report"])
        assert again == {"sent": 0, "failed": 0, "reclaimed": 0, "deferred": 0}


def test_two_concurrent_intakes_store_each_content_once(pg_schema, tmp_path):
    url = (
        f"postgresql+psycopg://{USER}@{HOST}:{PORT}/{DATABASE}"
        f"?options=-csearch_path%3D{pg_schema}_c"
    )
    with _admin_connect() as admin:
        admin.execute(f'CREATE SCHEMA "{pg_schema}_c"')
    try:
        subs, results = concurrent_intake(
            get_settings(data_dir=tmp_path / "data", database_url=url), tmp_path
        )
    finally:
        with _admin_connect() as admin:
            admin.execute(f'DROP SCHEMA "{pg_schema}_c" CASCADE')
    keys = [(u, h) for u, _, h in subs]
    assert len(keys) == len(set(keys)) == 11  # 10 files, the CSV carries two units
    outcomes = sorted(r.outcome for rs in results.values() for r in rs)
    assert outcomes.count("duplicate") == 11


def test_previous_values_as_on_sqlite(on_postgres, on_sqlite):
    """The figures the next quarter is compared with: each unit's latest valid version
    (TCKH's corrected second one), the same on both stores."""
    from baocao import crud

    frames = []
    for rt, _ in (on_postgres, on_sqlite):
        with session_scope(rt.engine) as s:
            units = rt.cfg.expected_units(rt.report)
            got = crud.previous_values(
                s, report_id=rt.report.id, period_code="2022-Q2", units=units
            )
        frames.append(got.sort_values(["unit", "indicator"]).reset_index(drop=True))
    pg, lite = frames
    assert len(pg) > 50 and set(pg["period"]) == {"2022-Q1"}
    assert pg.equals(lite)
    tckh = pg[pg["unit"] == "TCKH"].set_index("indicator")["value"]
    assert tckh["tc_chi_nsnn"] == tckh["tc_chi_huyen"] + tckh["tc_chi_xa"]  # v2, not rejected v1


def _migrate_together(url: str, barrier, errors) -> None:
    """In a process of its own, as a flow run is: migrate the store once all are ready."""
    from baocao.db import migrate

    engine = sa.create_engine(url)
    barrier.wait(120)
    try:
        migrate(engine)
    except Exception as exc:  # reported to the test, which names it
        errors.put(repr(exc))
    finally:
        engine.dispose()


def test_runs_starting_together_on_a_fresh_store_migrate_it_once(pg_schema):
    """Flow runs that start at the same moment on a fresh database (two process workers,
    benchmarks/bench_server.py) each migrate it: the others wait for the first (an advisory
    lock) instead of failing on a duplicate `CREATE TABLE alembic_version`."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    schema = f"{pg_schema}_m"
    url = f"postgresql+psycopg://{USER}@{HOST}:{PORT}/{DATABASE}?options=-csearch_path%3D{schema}"
    with _admin_connect() as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    barrier, errors = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_migrate_together, args=(url, barrier, errors)) for _ in range(3)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(180)
        found = [errors.get() for _ in range(errors.qsize())]
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        engine.dispose()
    finally:
        for p in procs:
            p.kill()
        with _admin_connect() as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert found == []
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(versions) == 1
