"""Repository creation templates and account settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from cargohold.metadata.schema import (
    account_settings,
    creation_templates,
)
from cargohold.metadata.sql import SqlStore


class SqlTemplates(SqlStore):
    """Repository creation templates and account settings."""

    async def get_account_setting(self, registry_id: str, name: str) -> str | None:
        row = (
            await self.conn.execute(
                sa.select(account_settings.c.value).where(
                    account_settings.c.registry_id == registry_id,
                    account_settings.c.name == name,
                )
            )
        ).first()
        return str(row.value) if row else None

    async def put_account_setting(self, registry_id: str, name: str, value: str) -> None:
        stmt = self._insert(account_settings).values(
            registry_id=registry_id, name=name, value=value
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["registry_id", "name"], set_={"value": stmt.excluded.value}
        )
        await self.conn.execute(stmt)

    @staticmethod
    def _template(row: Any) -> dict[str, Any]:
        """A template as ECR shapes it: its document plus prefix and timestamps."""
        return {
            **dict(row.document or {}),
            "prefix": row.prefix,
            "createdAt": row.created_at,
            "updatedAt": row.updated_at,
        }

    async def get_creation_template(self, registry_id: str, prefix: str) -> dict[str, Any] | None:
        row = (
            await self.conn.execute(
                sa.select(creation_templates).where(
                    creation_templates.c.registry_id == registry_id,
                    creation_templates.c.prefix == prefix,
                )
            )
        ).first()
        return self._template(row) if row else None

    async def insert_creation_template(
        self, registry_id: str, prefix: str, document: dict[str, Any], now: float
    ) -> bool:
        """Insert the template unless one has this prefix already; whether it was inserted."""
        stmt = (
            self._insert(creation_templates)
            .values(
                registry_id=registry_id,
                prefix=prefix,
                document=document,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["registry_id", "prefix"])
            .returning(creation_templates.c.prefix)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def update_creation_template(
        self, registry_id: str, prefix: str, document: dict[str, Any], now: float
    ) -> bool:
        result = await self.conn.execute(
            sa.update(creation_templates)
            .where(
                creation_templates.c.registry_id == registry_id,
                creation_templates.c.prefix == prefix,
            )
            .values(document=document, updated_at=now)
        )
        return bool(result.rowcount)

    async def delete_creation_template(self, registry_id: str, prefix: str) -> bool:
        result = await self.conn.execute(
            sa.delete(creation_templates).where(
                creation_templates.c.registry_id == registry_id,
                creation_templates.c.prefix == prefix,
            )
        )
        return bool(result.rowcount)

    async def list_creation_templates(
        self,
        registry_id: str,
        *,
        prefixes: Iterable[str] | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        query = (
            sa.select(creation_templates)
            .where(creation_templates.c.registry_id == registry_id)
            .order_by(self._lexical(creation_templates.c.prefix))
        )
        if prefixes is not None:
            query = query.where(creation_templates.c.prefix.in_(sorted(set(prefixes))))
        if after is not None:
            query = query.where(self._lexical(creation_templates.c.prefix) > after)
        if limit is not None:
            query = query.limit(limit)
        return [self._template(row) for row in await self.conn.execute(query)]
