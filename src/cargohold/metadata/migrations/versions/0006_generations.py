"""generations: the row SQLite's processes read to learn of each other's writes

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "generations",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("content", sa.BigInteger(), nullable=False),
        sa.Column("anything", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
    )
    op.bulk_insert(table, [{"id": 1, "content": 0, "anything": 0}])


def downgrade() -> None:
    op.drop_table("generations")
