"""lifecycle: lifecycle policies and previews, the archive storage class, pull-time exclusions

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pull_time_exclusions",
        sa.Column("registry_id", sa.String(length=12), nullable=False),
        sa.Column("principal_arn", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.account_id"],
            name=op.f("fk_pull_time_exclusions_registry_id_registries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "registry_id", "principal_arn", name=op.f("pk_pull_time_exclusions")
        ),
    )
    op.create_table(
        "lifecycle_policies",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("policy_text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("last_evaluated_at", sa.Float(), nullable=True),
        sa.Column("next_run_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_lifecycle_policies_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", name=op.f("pk_lifecycle_policies")),
    )
    with op.batch_alter_table("lifecycle_policies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lifecycle_policies_next_run_at"), ["next_run_at"], unique=False
        )

    op.create_table(
        "lifecycle_previews",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("policy_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_lifecycle_previews_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", name=op.f("pk_lifecycle_previews")),
    )
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("image_status", sa.String(length=16), server_default="ACTIVE", nullable=False)
        )
        batch_op.add_column(sa.Column("archived_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("activated_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.drop_column("activated_at")
        batch_op.drop_column("archived_at")
        batch_op.drop_column("image_status")

    op.drop_table("lifecycle_previews")
    with op.batch_alter_table("lifecycle_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lifecycle_policies_next_run_at"))

    op.drop_table("lifecycle_policies")
    op.drop_table("pull_time_exclusions")
