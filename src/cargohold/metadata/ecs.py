"""ECS: clusters, task definitions, container instances and tasks (`ports.ecs.EcsStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cargohold.metadata.schema import (
    ecs_clusters,
    ecs_container_instances,
    ecs_task_definitions,
    ecs_tasks,
)
from cargohold.metadata.sql import SqlStore
from cargohold.ports.ecs import EcsRecord, TaggedKind, TaskFilter


def _record(row: Any) -> EcsRecord:
    return EcsRecord(dict(row.document), list(row.tags or []))


class SqlEcs(SqlStore):
    # -- clusters ---------------------------------------------------------------------------

    async def insert_cluster(
        self,
        account: str,
        name: str,
        document: dict[str, Any],
        tags: list[dict[str, str]],
        now: float,
    ) -> bool:
        stmt = (
            self._insert(ecs_clusters)
            .values(account_id=account, name=name, document=document, tags=tags, created_at=now)
            .on_conflict_do_nothing(index_elements=["account_id", "name"])
            .returning(ecs_clusters.c.name)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def get_cluster(self, account: str, name: str) -> EcsRecord | None:
        row = (
            await self.conn.execute(
                sa.select(ecs_clusters).where(
                    ecs_clusters.c.account_id == account, ecs_clusters.c.name == name
                )
            )
        ).first()
        return _record(row) if row else None

    async def update_cluster(self, account: str, name: str, document: dict[str, Any]) -> None:
        await self.conn.execute(
            sa.update(ecs_clusters)
            .where(ecs_clusters.c.account_id == account, ecs_clusters.c.name == name)
            .values(document=document)
        )

    async def delete_cluster(self, account: str, name: str) -> bool:
        result = await self.conn.execute(
            sa.delete(ecs_clusters).where(
                ecs_clusters.c.account_id == account, ecs_clusters.c.name == name
            )
        )
        return bool(result.rowcount)

    async def list_clusters(self, account: str) -> list[str]:
        rows = await self.conn.execute(
            sa.select(ecs_clusters.c.name)
            .where(ecs_clusters.c.account_id == account)
            .order_by(ecs_clusters.c.created_at, ecs_clusters.c.name)
        )
        return [row.name for row in rows]

    # -- task definitions -------------------------------------------------------------------

    def _definition(self, account: str, family: str) -> Any:
        return sa.and_(
            ecs_task_definitions.c.account_id == account, ecs_task_definitions.c.family == family
        )

    async def latest_revision(self, account: str, family: str) -> int:
        value = await self.conn.scalar(
            sa.select(sa.func.max(ecs_task_definitions.c.revision)).where(
                self._definition(account, family)
            )
        )
        return int(value or 0)

    async def insert_task_definition(
        self,
        account: str,
        family: str,
        revision: int,
        document: dict[str, Any],
        tags: list[dict[str, str]],
    ) -> bool:
        stmt = (
            self._insert(ecs_task_definitions)
            .values(
                account_id=account,
                family=family,
                revision=revision,
                status=document["status"],
                document=document,
                tags=tags,
            )
            .on_conflict_do_nothing(index_elements=["account_id", "family", "revision"])
            .returning(ecs_task_definitions.c.revision)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def get_task_definition(
        self, account: str, family: str, revision: int | None
    ) -> EcsRecord | None:
        query = sa.select(ecs_task_definitions).where(self._definition(account, family))
        if revision is None:
            query = (
                query.where(ecs_task_definitions.c.status == "ACTIVE")
                .order_by(ecs_task_definitions.c.revision.desc())
                .limit(1)
            )
        else:
            query = query.where(ecs_task_definitions.c.revision == revision)
        row = (await self.conn.execute(query)).first()
        return _record(row) if row else None

    async def update_task_definition(
        self, account: str, family: str, revision: int, document: dict[str, Any]
    ) -> None:
        await self.conn.execute(
            sa.update(ecs_task_definitions)
            .where(self._definition(account, family), ecs_task_definitions.c.revision == revision)
            .values(document=document, status=document["status"])
        )

    async def list_task_definitions(
        self, account: str, *, family: str | None, status: str | None
    ) -> list[tuple[str, int]]:
        query = sa.select(ecs_task_definitions.c.family, ecs_task_definitions.c.revision).where(
            ecs_task_definitions.c.account_id == account
        )
        if family is not None:
            query = query.where(ecs_task_definitions.c.family == family)
        if status is not None:
            query = query.where(ecs_task_definitions.c.status == status)
        query = query.order_by(
            self._lexical(ecs_task_definitions.c.family), ecs_task_definitions.c.revision
        )
        return [(row.family, int(row.revision)) for row in await self.conn.execute(query)]

    # -- container instances ----------------------------------------------------------------

    async def insert_instance(
        self,
        instance_id: str,
        account: str,
        cluster: str,
        document: dict[str, Any],
        tags: list[dict[str, str]],
    ) -> None:
        await self.conn.execute(
            sa.insert(ecs_container_instances).values(
                id=instance_id,
                account_id=account,
                cluster=cluster,
                status=document["status"],
                document=document,
                tags=tags,
            )
        )

    async def get_instance(self, account: str, instance_id: str) -> EcsRecord | None:
        row = (
            await self.conn.execute(
                sa.select(ecs_container_instances).where(
                    ecs_container_instances.c.account_id == account,
                    ecs_container_instances.c.id == instance_id,
                )
            )
        ).first()
        return _record(row) if row else None

    async def update_instance(self, instance_id: str, document: dict[str, Any]) -> None:
        await self.conn.execute(
            sa.update(ecs_container_instances)
            .where(ecs_container_instances.c.id == instance_id)
            .values(document=document, status=document["status"])
        )

    async def list_instances(
        self, account: str, cluster: str, status: str | None = None
    ) -> list[EcsRecord]:
        table = ecs_container_instances
        query = sa.select(table).where(table.c.account_id == account, table.c.cluster == cluster)
        if status is not None:
            query = query.where(table.c.status == status)
        return [_record(row) for row in await self.conn.execute(query.order_by(table.c.id))]

    # -- tasks ------------------------------------------------------------------------------

    async def insert_task(
        self,
        task_id: str,
        account: str,
        document: dict[str, Any],
        tags: list[dict[str, str]],
        *,
        container_instance: str | None,
        family: str,
        started_by: str | None,
    ) -> None:
        await self.conn.execute(
            sa.insert(ecs_tasks).values(
                id=task_id,
                account_id=account,
                cluster=document["clusterArn"].rpartition("/")[2],
                container_instance=container_instance,
                family=family,
                desired_status=document["desiredStatus"],
                last_status=document["lastStatus"],
                started_by=started_by,
                created_at=document["createdAt"],
                document=document,
                tags=tags,
            )
        )

    async def get_task(self, account: str, task_id: str) -> EcsRecord | None:
        row = (
            await self.conn.execute(
                sa.select(ecs_tasks).where(
                    ecs_tasks.c.account_id == account, ecs_tasks.c.id == task_id
                )
            )
        ).first()
        return _record(row) if row else None

    async def update_task(self, task_id: str, document: dict[str, Any]) -> None:
        await self.conn.execute(
            sa.update(ecs_tasks)
            .where(ecs_tasks.c.id == task_id)
            .values(
                document=document,
                desired_status=document["desiredStatus"],
                last_status=document["lastStatus"],
            )
        )

    async def list_tasks(self, account: str, where: TaskFilter) -> list[EcsRecord]:
        query = sa.select(ecs_tasks).where(
            ecs_tasks.c.account_id == account, ecs_tasks.c.cluster == where.cluster
        )
        if where.container_instance is not None:
            query = query.where(ecs_tasks.c.container_instance == where.container_instance)
        if where.family is not None:
            query = query.where(ecs_tasks.c.family == where.family)
        if where.desired_status is not None:
            query = query.where(ecs_tasks.c.desired_status == where.desired_status)
        if where.started_by is not None:
            query = query.where(ecs_tasks.c.started_by == where.started_by)
        query = query.order_by(ecs_tasks.c.created_at, ecs_tasks.c.id)
        return [_record(row) for row in await self.conn.execute(query)]

    async def count_tasks(self, account: str, cluster: str, *, active: bool) -> dict[str, int]:
        query = sa.select(ecs_tasks.c.container_instance, sa.func.count()).where(
            ecs_tasks.c.account_id == account, ecs_tasks.c.cluster == cluster
        )
        if active:
            query = query.where(ecs_tasks.c.last_status != "STOPPED")
        query = query.group_by(ecs_tasks.c.container_instance)
        return {str(row[0] or ""): int(row[1]) for row in await self.conn.execute(query)}

    # -- tags -------------------------------------------------------------------------------

    async def set_tags(
        self, kind: TaggedKind, account: str, key: Sequence[str], tags: list[dict[str, str]]
    ) -> bool:
        if kind == "cluster":
            table, where = ecs_clusters, [ecs_clusters.c.name == key[0]]
        elif kind == "task-definition":
            table = ecs_task_definitions
            where = [table.c.family == key[0], table.c.revision == int(key[1])]
        elif kind == "task":
            table, where = ecs_tasks, [ecs_tasks.c.id == key[0]]
        else:
            table, where = ecs_container_instances, [ecs_container_instances.c.id == key[0]]
        result = await self.conn.execute(
            sa.update(table).where(table.c.account_id == account, *where).values(tags=tags)
        )
        return bool(result.rowcount)
