"""Lifecycle policies and previews, what a lifecycle run reads and changes, pull times and
pull-time exclusions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from cargohold.domain.records import LifecycleManifest, StoredLifecyclePolicy, StoredPreview
from cargohold.metadata.schema import (
    lifecycle_policies,
    lifecycle_previews,
    manifest_children,
    manifests,
    pull_time_exclusions,
    tags,
)
from cargohold.metadata.sql import BATCH_ROWS, SqlStore

_IN_PROGRESS = "IN_PROGRESS"


class SqlLifecycle(SqlStore):
    """Lifecycle policies and previews, image statuses, pull times and pull exclusions."""

    async def lifecycle_policy(self, repository_id: int) -> StoredLifecyclePolicy | None:
        row = (
            await self.conn.execute(
                sa.select(lifecycle_policies).where(
                    lifecycle_policies.c.repository_id == repository_id
                )
            )
        ).first()
        if row is None:
            return None
        return StoredLifecyclePolicy(row.policy_text, row.updated_at, row.last_evaluated_at)

    async def put_lifecycle_policy(
        self, repository_id: int, text: str, now: float, next_run_at: float
    ) -> None:
        stmt = self._insert(lifecycle_policies).values(
            repository_id=repository_id, policy_text=text, updated_at=now, next_run_at=next_run_at
        )
        await self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["repository_id"],
                set_={"policy_text": text, "updated_at": now, "next_run_at": next_run_at},
            )
        )

    async def delete_lifecycle_policy(self, repository_id: int) -> bool:
        result = await self.conn.execute(
            sa.delete(lifecycle_policies).where(lifecycle_policies.c.repository_id == repository_id)
        )
        return bool(result.rowcount)

    async def claim_due_runs(self, now: float, next_run_at: float, limit: int) -> list[int]:
        due = (
            sa.select(lifecycle_policies.c.repository_id)
            .where(lifecycle_policies.c.next_run_at <= now)
            .order_by(lifecycle_policies.c.next_run_at)
            .limit(limit)
            .scalar_subquery()
        )
        # The outer condition is checked again on the row once locked (PostgreSQL re-reads a
        # row another transaction updated): two claimers never both move one row on.
        stmt = (
            sa.update(lifecycle_policies)
            .where(
                lifecycle_policies.c.repository_id.in_(due),
                lifecycle_policies.c.next_run_at <= now,
            )
            .values(next_run_at=next_run_at)
            .returning(lifecycle_policies.c.repository_id)
        )
        return sorted(int(row.repository_id) for row in await self.conn.execute(stmt))

    async def policy_repositories(self) -> list[int]:
        rows = await self.conn.execute(
            sa.select(lifecycle_policies.c.repository_id).order_by(
                lifecycle_policies.c.repository_id
            )
        )
        return [int(row.repository_id) for row in rows]

    async def set_evaluated(self, repository_id: int, now: float) -> None:
        await self.conn.execute(
            sa.update(lifecycle_policies)
            .where(lifecycle_policies.c.repository_id == repository_id)
            .values(last_evaluated_at=now)
        )

    async def preview(self, repository_id: int) -> StoredPreview | None:
        row = (
            await self.conn.execute(
                sa.select(lifecycle_previews).where(
                    lifecycle_previews.c.repository_id == repository_id
                )
            )
        ).first()
        if row is None:
            return None
        results = list(row.results) if row.results is not None else None
        return StoredPreview(row.policy_text, row.status, row.started_at, results)

    async def start_preview(self, repository_id: int, text: str, now: float) -> bool:
        values = {"policy_text": text, "status": _IN_PROGRESS, "started_at": now, "results": None}
        stmt = self._insert(lifecycle_previews).values(repository_id=repository_id, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["repository_id"],
            set_=values,
            where=lifecycle_previews.c.status != _IN_PROGRESS,
        ).returning(lifecycle_previews.c.repository_id)
        return (await self.conn.execute(stmt)).first() is not None

    async def finish_preview(
        self, repository_id: int, status: str, results: Sequence[Mapping[str, Any]] | None
    ) -> None:
        await self.conn.execute(
            sa.update(lifecycle_previews)
            .where(lifecycle_previews.c.repository_id == repository_id)
            .values(status=status, results=None if results is None else list(results))
        )

    async def lifecycle_manifests(self, repository_id: int) -> list[LifecycleManifest]:
        rows = list(
            await self.conn.execute(
                sa.select(
                    manifests.c.id,
                    manifests.c.digest,
                    manifests.c.subject_digest,
                    manifests.c.pushed_at,
                    manifests.c.last_pulled_at,
                    manifests.c.image_status,
                    manifests.c.archived_at,
                    manifests.c.activated_at,
                )
                .where(manifests.c.repository_id == repository_id)
                .order_by(manifests.c.pushed_at, manifests.c.id)
            )
        )
        names: dict[int, list[str]] = {}
        for row in await self.conn.execute(
            sa.select(tags.c.manifest_id, tags.c.name)
            .where(tags.c.repository_id == repository_id)
            .order_by(self._lexical(tags.c.name))
        ):
            names.setdefault(row.manifest_id, []).append(row.name)
        children = {
            row.child_digest
            for row in await self.conn.execute(
                sa.select(manifest_children.c.child_digest)
                .select_from(
                    manifest_children.join(
                        manifests, manifests.c.id == manifest_children.c.manifest_id
                    )
                )
                .where(manifests.c.repository_id == repository_id)
            )
        }
        return [
            LifecycleManifest(
                id=row.id,
                digest=row.digest,
                tags=tuple(names.get(row.id, ())),
                subject_digest=row.subject_digest,
                pushed_at=row.pushed_at,
                last_pulled_at=row.last_pulled_at,
                image_status=row.image_status,
                archived_at=row.archived_at,
                activated_at=row.activated_at,
                in_index=row.digest in children,
            )
            for row in rows
        ]

    async def set_image_status(
        self,
        manifest_ids: Iterable[int],
        status: str,
        *,
        archived_at: float | None = None,
        activated_at: float | None = None,
    ) -> None:
        wanted = sorted(set(manifest_ids))
        values: dict[str, Any] = {"image_status": status}
        if archived_at is not None:
            values["archived_at"] = archived_at
        if activated_at is not None:
            values["activated_at"] = activated_at
        for start in range(0, len(wanted), BATCH_ROWS):
            await self.conn.execute(
                sa.update(manifests)
                .where(manifests.c.id.in_(wanted[start : start + BATCH_ROWS]))
                .values(**values)
            )

    async def record_pulls(self, pulls: Mapping[int, float]) -> None:
        if not pulls:
            return
        stmt = (
            sa.update(manifests)
            .where(
                manifests.c.id == sa.bindparam("b_id"),
                sa.or_(
                    manifests.c.last_pulled_at.is_(None),
                    manifests.c.last_pulled_at < sa.bindparam("b_time"),
                ),
            )
            .values(last_pulled_at=sa.bindparam("b_time"))
        )
        rows = [{"b_id": key, "b_time": when} for key, when in sorted(pulls.items())]
        for start in range(0, len(rows), BATCH_ROWS):
            await self.conn.execute(stmt, rows[start : start + BATCH_ROWS])

    async def pull_exclusions(self, registry_id: str) -> dict[str, float]:
        rows = await self.conn.execute(
            sa.select(pull_time_exclusions.c.principal_arn, pull_time_exclusions.c.created_at)
            .where(pull_time_exclusions.c.registry_id == registry_id)
            .order_by(pull_time_exclusions.c.principal_arn)
        )
        return {row.principal_arn: row.created_at for row in rows}

    async def add_pull_exclusion(self, registry_id: str, principal_arn: str, now: float) -> bool:
        result = await self.conn.execute(
            self._insert(pull_time_exclusions)
            .values(registry_id=registry_id, principal_arn=principal_arn, created_at=now)
            .on_conflict_do_nothing(index_elements=["registry_id", "principal_arn"])
        )
        return bool(result.rowcount)

    async def delete_pull_exclusion(self, registry_id: str, principal_arn: str) -> bool:
        result = await self.conn.execute(
            sa.delete(pull_time_exclusions).where(
                pull_time_exclusions.c.registry_id == registry_id,
                pull_time_exclusions.c.principal_arn == principal_arn,
            )
        )
        return bool(result.rowcount)
