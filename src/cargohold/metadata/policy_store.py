"""Statements over repository and registry policies, and over the events table (the audit log).

`PolicyTx` and `EventTx` wrap one transaction's connection, as `Tx` and `IdentityTx` do, so a
service can change a repository and its policy in one unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from cargohold.metadata.schema import (
    account_settings,
    events,
    registry_policies,
    repositories,
    repository_policies,
    resource_tags,
)


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    text: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class RepositoryFacts:
    """What authorization needs about one repository: its policy and its tags."""

    policy: str | None
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    kind: str
    event_time: float
    document: dict[str, Any]


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


class PolicyTx:
    """Repository and registry policies on one transaction's connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    # -- repository policies ----------------------------------------------------------------

    async def repository_policy(self, repository_id: int) -> StoredPolicy | None:
        row = (
            await self.conn.execute(
                sa.select(repository_policies).where(
                    repository_policies.c.repository_id == repository_id
                )
            )
        ).first()
        return None if row is None else StoredPolicy(row.policy_text, float(row.updated_at))

    async def put_repository_policy(self, repository_id: int, text: str, now: float) -> None:
        stmt = _insert(self.conn, repository_policies).values(
            repository_id=repository_id, policy_text=text, updated_at=now
        )
        await self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["repository_id"],
                set_={"policy_text": stmt.excluded.policy_text, "updated_at": now},
            )
        )

    async def delete_repository_policy(self, repository_id: int) -> bool:
        result = await self.conn.execute(
            sa.delete(repository_policies).where(
                repository_policies.c.repository_id == repository_id
            )
        )
        return bool(result.rowcount)

    async def repository_facts(self, registry_id: str, name: str) -> RepositoryFacts | None:
        """The policy and tags of a repository; None when it does not exist."""
        row = (
            await self.conn.execute(
                sa.select(repositories.c.id, repository_policies.c.policy_text)
                .select_from(
                    repositories.outerjoin(
                        repository_policies,
                        repository_policies.c.repository_id == repositories.c.id,
                    )
                )
                .where(repositories.c.registry_id == registry_id, repositories.c.name == name)
            )
        ).first()
        if row is None:
            return None
        tags = await self.conn.execute(
            sa.select(resource_tags.c.key, resource_tags.c.value).where(
                resource_tags.c.repository_id == row.id
            )
        )
        return RepositoryFacts(row.policy_text, {t.key: t.value for t in tags})

    # -- registry policies ------------------------------------------------------------------

    async def registry_policy(self, registry_id: str) -> StoredPolicy | None:
        row = (
            await self.conn.execute(
                sa.select(registry_policies).where(registry_policies.c.registry_id == registry_id)
            )
        ).first()
        return None if row is None else StoredPolicy(row.policy_text, float(row.updated_at))

    async def put_registry_policy(self, registry_id: str, text: str, now: float) -> None:
        stmt = _insert(self.conn, registry_policies).values(
            registry_id=registry_id, policy_text=text, updated_at=now
        )
        await self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["registry_id"],
                set_={"policy_text": stmt.excluded.policy_text, "updated_at": now},
            )
        )

    async def delete_registry_policy(self, registry_id: str) -> bool:
        result = await self.conn.execute(
            sa.delete(registry_policies).where(registry_policies.c.registry_id == registry_id)
        )
        return bool(result.rowcount)

    async def registry_facts(self, registry_id: str, setting: str) -> tuple[str | None, str | None]:
        """The registry's policy and the value of one account setting (None: not set)."""
        policy = await self.registry_policy(registry_id)
        value = (
            await self.conn.execute(
                sa.select(account_settings.c.value).where(
                    account_settings.c.registry_id == registry_id,
                    account_settings.c.name == setting,
                )
            )
        ).scalar_one_or_none()
        return (None if policy is None else policy.text), value


class EventTx:
    """The events table on one transaction's connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def insert_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Many events in one statement (an executemany): what the batched audit log writes.
        Each row names the columns: kind, event_time, account_id, event_source, event_name,
        principal_arn, error_code, document."""
        if rows:
            await self.conn.execute(sa.insert(events), [dict(row) for row in rows])

    async def list_events(
        self,
        kind: str,
        *,
        since: float | None = None,
        until: float | None = None,
        principal_arn: str | None = None,
        account_id: str | None = None,
        after_id: int | None = None,
        errors_only: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Events of one kind, oldest first (by time, then by id); `errors_only`: those with an
        error code."""
        query = sa.select(events).where(events.c.kind == kind)
        if since is not None:
            query = query.where(events.c.event_time >= since)
        if until is not None:
            query = query.where(events.c.event_time < until)
        if principal_arn is not None:
            query = query.where(events.c.principal_arn == principal_arn)
        if account_id is not None:
            query = query.where(events.c.account_id == account_id)
        if after_id is not None:
            query = query.where(events.c.id > after_id)
        if errors_only:
            query = query.where(events.c.error_code.is_not(None))
        query = query.order_by(events.c.event_time, events.c.id)
        if limit is not None:
            query = query.limit(limit)
        rows = await self.conn.execute(query)
        return [
            StoredEvent(row.id, row.kind, float(row.event_time), dict(row.document)) for row in rows
        ]
