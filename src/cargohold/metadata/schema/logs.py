"""CloudWatch Logs, the subset ECS's `awslogs` driver writes and `aws logs` reads: log groups,
their streams, and the events of each stream in the order they were put."""

from __future__ import annotations

import sqlalchemy as sa

from cargohold.metadata.schema.base import metadata

log_groups = sa.Table(
    "log_groups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("retention_days", sa.Integer, nullable=True),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.UniqueConstraint("account_id", "name"),
)

log_streams = sa.Table(
    "log_streams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "group_id", sa.Integer, sa.ForeignKey("log_groups.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("first_event", sa.BigInteger, nullable=True),
    sa.Column("last_event", sa.BigInteger, nullable=True),
    sa.Column("last_ingestion", sa.BigInteger, nullable=True),
    sa.Column("stored_bytes", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("group_id", "name"),
)

# Timestamps are milliseconds since the epoch, as CloudWatch Logs counts them.
log_events = sa.Table(
    "log_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "stream_id", sa.Integer, sa.ForeignKey("log_streams.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("ingested_at", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index(None, "stream_id", "id"),
)
