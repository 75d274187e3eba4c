"""reliability: arrival keys and read attempts on receipts, content key on submissions,
leases and stable Message-IDs in the outbox, one-time approval codes

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import baocao.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("receipt") as b:
        b.add_column(sa.Column("arrival_key", sa.String(), nullable=True))
        b.add_column(sa.Column("source", sa.String(), nullable=False, server_default="folder"))
        b.add_column(sa.Column("sender", sa.String(), nullable=True))
        b.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
    op.execute("UPDATE receipt SET arrival_key = 'legacy:' || CAST(id AS VARCHAR)")
    with op.batch_alter_table("receipt") as b:
        b.alter_column("arrival_key", existing_type=sa.String(), nullable=False)
        b.create_index("ix_receipt_arrival_key", ["arrival_key"], unique=True)

    with op.batch_alter_table("submission") as b:
        b.add_column(sa.Column("sha256", sa.String(), nullable=True))
        b.add_column(sa.Column("credential", sa.String(), nullable=False, server_default="token"))
    op.execute(
        "UPDATE submission SET sha256 = (SELECT receipt.sha256 FROM receipt "
        "WHERE receipt.id = submission.receipt_id)"
    )
    with op.batch_alter_table("submission") as b:
        b.alter_column("sha256", existing_type=sa.String(), nullable=False)
        b.create_unique_constraint("uq_submission_content", ["period_id", "unit_code", "sha256"])

    with op.batch_alter_table("outbox_message") as b:
        b.add_column(sa.Column("body_html", sa.String(), nullable=False, server_default=""))
        b.add_column(sa.Column("message_id", sa.String(), nullable=False, server_default=""))
        b.add_column(sa.Column("claim_id", sa.String(), nullable=True))
        b.add_column(
            sa.Column("lease_until", baocao.models.UTCDateTime(timezone=True), nullable=True)
        )
        b.create_index("ix_outbox_message_status", ["status"], unique=False)

    op.create_table(
        "approval_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_version_id", sa.Integer(), nullable=False),
        sa.Column("approver", sa.String(), nullable=False),
        sa.Column("code_hash", sa.String(), nullable=False),
        sa.Column("created_at", baocao.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", baocao.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", baocao.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_tries", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["report_version_id"], ["rendered_report.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_approval_code_report_version_id", "approval_code", ["report_version_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_approval_code_report_version_id", table_name="approval_code")
    op.drop_table("approval_code")
    with op.batch_alter_table("outbox_message") as b:
        b.drop_index("ix_outbox_message_status")
        for col in ("lease_until", "claim_id", "message_id", "body_html"):
            b.drop_column(col)
    with op.batch_alter_table("submission") as b:
        b.drop_constraint("uq_submission_content", type_="unique")
        b.drop_column("credential")
        b.drop_column("sha256")
    with op.batch_alter_table("receipt") as b:
        b.drop_index("ix_receipt_arrival_key")
        for col in ("attempts", "sender", "source", "arrival_key"):
            b.drop_column(col)
