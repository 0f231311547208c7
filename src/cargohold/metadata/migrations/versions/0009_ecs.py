"""ecs: clusters, task definitions, container instances, tasks

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ecs_clusters",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "name", name=op.f("pk_ecs_clusters")),
    )
    op.create_table(
        "ecs_task_definitions",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("family", sa.String(length=255), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "family", "revision", name=op.f("pk_ecs_task_definitions")
        ),
    )
    op.create_table(
        "ecs_container_instances",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("cluster", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ecs_container_instances")),
    )
    op.create_index(
        op.f("ix_ecs_container_instances_account_id_cluster"),
        "ecs_container_instances",
        ["account_id", "cluster"],
    )
    op.create_table(
        "ecs_tasks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("cluster", sa.String(length=255), nullable=False),
        sa.Column("container_instance", sa.String(length=32), nullable=True),
        sa.Column("family", sa.String(length=255), nullable=False),
        sa.Column("desired_status", sa.String(length=32), nullable=False),
        sa.Column("last_status", sa.String(length=32), nullable=False),
        sa.Column("started_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ecs_tasks")),
    )
    op.create_index(op.f("ix_ecs_tasks_account_id_cluster"), "ecs_tasks", ["account_id", "cluster"])
    op.create_index(op.f("ix_ecs_tasks_container_instance"), "ecs_tasks", ["container_instance"])


def downgrade() -> None:
    op.drop_table("ecs_tasks")
    op.drop_table("ecs_container_instances")
    op.drop_table("ecs_task_definitions")
    op.drop_table("ecs_clusters")
