"""Repositories, their settings and their resource tags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from cargohold.domain.errors import RepositoryAlreadyExists
from cargohold.domain.records import (
    Repository,
)
from cargohold.metadata.schema import (
    repositories,
    resource_tags,
)
from cargohold.metadata.sql import SqlStore


def _repository(row: Any) -> Repository:
    return Repository(
        id=row.id,
        registry_id=row.registry_id,
        name=row.name,
        created_at=row.created_at,
        tag_mutability=row.tag_mutability,
        tag_mutability_filters=list(row.tag_mutability_filters or []),
        scan_on_push=bool(row.scan_on_push),
        encryption=dict(row.encryption or {}),
    )


class SqlRepositories(SqlStore):
    """Repositories, their settings and their resource tags."""

    async def get_repository(self, registry_id: str, name: str) -> Repository | None:
        row = (
            await self.conn.execute(
                sa.select(repositories).where(
                    repositories.c.registry_id == registry_id, repositories.c.name == name
                )
            )
        ).first()
        return _repository(row) if row else None

    async def create_repository(
        self, registry_id: str, name: str, now: float, **settings: Any
    ) -> Repository:
        stmt = (
            self._insert(repositories)
            .values(registry_id=registry_id, name=name, created_at=now, **settings)
            .on_conflict_do_nothing(index_elements=["registry_id", "name"])
            .returning(*repositories.c)
        )
        row = (await self.conn.execute(stmt)).first()
        if row is None:
            raise RepositoryAlreadyExists(
                f"The repository with name '{name}' already exists in the registry "
                f"with id '{registry_id}'"
            )
        return _repository(row)

    async def update_repository(self, repository_id: int, **values: Any) -> None:
        await self.conn.execute(
            sa.update(repositories).where(repositories.c.id == repository_id).values(**values)
        )

    async def list_repositories(
        self, registry_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[Repository]:
        query = (
            sa.select(repositories)
            .where(repositories.c.registry_id == registry_id)
            .order_by(self._lexical(repositories.c.name))
        )
        if after is not None:
            query = query.where(self._lexical(repositories.c.name) > after)
        if limit is not None:
            query = query.limit(limit)
        return [_repository(row) for row in await self.conn.execute(query)]

    async def repositories_by_id(self, repository_ids: Iterable[int]) -> dict[int, Repository]:
        """The repositories with these ids, by id, those that exist."""
        wanted = sorted(set(repository_ids))
        if not wanted:
            return {}
        rows = await self.conn.execute(sa.select(repositories).where(repositories.c.id.in_(wanted)))
        return {row.id: _repository(row) for row in rows}

    async def delete_repository(self, repository_id: int) -> None:
        await self.conn.execute(sa.delete(repositories).where(repositories.c.id == repository_id))

    async def resource_tags(self, repository_id: int) -> dict[str, str]:
        rows = await self.conn.execute(
            sa.select(resource_tags.c.key, resource_tags.c.value)
            .where(resource_tags.c.repository_id == repository_id)
            .order_by(self._lexical(resource_tags.c.key))
        )
        return {row.key: row.value for row in rows}

    async def put_resource_tags(self, repository_id: int, values: dict[str, str]) -> None:
        """Add or overwrite tags; tags not named are left as they are."""
        for key, value in values.items():
            stmt = self._insert(resource_tags).values(
                repository_id=repository_id, key=key, value=value
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["repository_id", "key"], set_={"value": stmt.excluded.value}
            )
            await self.conn.execute(stmt)

    async def delete_resource_tags(self, repository_id: int, keys: Iterable[str]) -> None:
        wanted = sorted(set(keys))
        if wanted:
            await self.conn.execute(
                sa.delete(resource_tags).where(
                    resource_tags.c.repository_id == repository_id,
                    resource_tags.c.key.in_(wanted),
                )
            )
