"""Repository and registry policies, and what authorization reads beside them."""

from __future__ import annotations

import sqlalchemy as sa

from cargohold.domain.records import RepositoryFacts, StoredPolicy
from cargohold.metadata.schema import (
    account_settings,
    registry_policies,
    repositories,
    repository_policies,
    resource_tags,
)
from cargohold.metadata.sql import SqlStore


class SqlPolicies(SqlStore):
    """Repository and registry policies, and what authorization reads beside them."""

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
        stmt = self._insert(repository_policies).values(
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

    async def registry_policy(self, registry_id: str) -> StoredPolicy | None:
        row = (
            await self.conn.execute(
                sa.select(registry_policies).where(registry_policies.c.registry_id == registry_id)
            )
        ).first()
        return None if row is None else StoredPolicy(row.policy_text, float(row.updated_at))

    async def put_registry_policy(self, registry_id: str, text: str, now: float) -> None:
        stmt = self._insert(registry_policies).values(
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
