"""logs: CloudWatch Logs groups, streams and events

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_groups")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_log_groups_account_id_name")),
    )
    op.create_table(
        "log_streams",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("first_event", sa.BigInteger(), nullable=True),
        sa.Column("last_event", sa.BigInteger(), nullable=True),
        sa.Column("last_ingestion", sa.BigInteger(), nullable=True),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["log_groups.id"],
            name=op.f("fk_log_streams_group_id_log_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_streams")),
        sa.UniqueConstraint("group_id", "name", name=op.f("uq_log_streams_group_id_name")),
    )
    op.create_table(
        "log_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("ingested_at", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["log_streams.id"],
            name=op.f("fk_log_events_stream_id_log_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_events")),
    )
    op.create_index(op.f("ix_log_events_stream_id_id"), "log_events", ["stream_id", "id"])


def downgrade() -> None:
    op.drop_table("log_events")
    op.drop_table("log_streams")
    op.drop_table("log_groups")
