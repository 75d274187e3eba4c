"""report number: the document number (Số) and signing date a decision gives a version

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rendered_report") as b:
        b.add_column(sa.Column("number", sa.String(), nullable=True))
        b.add_column(sa.Column("signed_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rendered_report") as b:
        b.drop_column("signed_on")
        b.drop_column("number")
