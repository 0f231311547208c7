"""The event outbox: ECR's EventBridge events, written in the transaction of the change they
report, and how far each delivery target has read them (`metadata.outbox`)."""

from __future__ import annotations

import sqlalchemy as sa

from cargohold.metadata.schema.base import metadata

#: A 64-bit id on PostgreSQL (BIGSERIAL); SQLite autoincrements only an INTEGER PRIMARY KEY.
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Ids only grow: PostgreSQL's sequence never hands one out twice, and on SQLite AUTOINCREMENT
# keeps the ids of pruned rows from being used again (a plain rowid would reuse the highest id
# once it is deleted, behind every cursor that had passed it).
event_outbox = sa.Table(
    "event_outbox",
    metadata,
    sa.Column("id", EVENT_ID, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("repository_name", sa.String(256), nullable=True),
    sa.Column("detail_type", sa.String(128), nullable=False),
    # The whole event, as JSON text: what is delivered, byte for byte.
    sa.Column("document", sa.Text, nullable=False),
    sa.Index(None, "created_at"),
    sqlite_autoincrement=True,
)

# One row per delivery target: the id of the last event it has been given.
event_cursors = sa.Table(
    "event_cursors",
    metadata,
    sa.Column("target", sa.String(256), primary_key=True),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
