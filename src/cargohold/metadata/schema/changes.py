"""What tells every process of one registry that another one wrote (`metadata.generations`)."""

from __future__ import annotations

import sqlalchemy as sa

from cargohold.metadata.schema.base import metadata

# One row (id 1): how many committed write transactions changed what repositories hold
# (`content`) and how many changed anything a cache keeps (`anything`). SQLite's processes read it
# to learn of each other's writes; PostgreSQL's are told with NOTIFY and leave it at zero.
generations = sa.Table(
    "generations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("content", sa.BigInteger, nullable=False),
    sa.Column("anything", sa.BigInteger, nullable=False),
)
