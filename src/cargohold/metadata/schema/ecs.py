"""ECS: clusters, task definitions, container instances and tasks.

Each row keeps the columns ECS's calls select and filter on, and the rest of the resource as
the API shapes it (`document`), with its resource tags beside it.
"""

from __future__ import annotations

import sqlalchemy as sa

from cargohold.metadata.schema.base import metadata

ecs_clusters = sa.Table(
    "ecs_clusters",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Revisions of a family count up from 1 and are never reused, even once deleted.
ecs_task_definitions = sa.Table(
    "ecs_task_definitions",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("family", sa.String(255), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),
    # ACTIVE, INACTIVE, DELETE_IN_PROGRESS
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
)

ecs_container_instances = sa.Table(
    "ecs_container_instances",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("cluster", sa.String(255), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Index(None, "account_id", "cluster"),
)

ecs_tasks = sa.Table(
    "ecs_tasks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("cluster", sa.String(255), nullable=False),
    sa.Column("container_instance", sa.String(32), nullable=True),
    sa.Column("family", sa.String(255), nullable=False),
    sa.Column("desired_status", sa.String(32), nullable=False),
    sa.Column("last_status", sa.String(32), nullable=False),
    sa.Column("started_by", sa.String(128), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Index(None, "account_id", "cluster"),
    sa.Index(None, "container_instance"),
)
