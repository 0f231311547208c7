"""gc: the marks of online garbage collection on blobs (touched_at, deleting), and scrub's
(quarantined)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("touched_at", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("deleting", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("quarantined", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # Blobs already stored were last touched when they were recorded.
    op.execute("UPDATE blobs SET touched_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.drop_column("quarantined")
        batch_op.drop_column("deleting")
        batch_op.drop_column("touched_at")
