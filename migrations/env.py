"""Alembic environment: the connection comes from baocao.db.migrate (or alembic.ini's URL)."""

from alembic import context
from sqlmodel import SQLModel

import baocao.models  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        import sqlalchemy as sa

        engine = config.attributes.get("engine") or sa.create_engine(
            config.get_main_option("sqlalchemy.url")
        )
        with engine.begin() as conn:
            _run(conn)
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
