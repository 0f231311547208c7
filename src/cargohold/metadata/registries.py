"""The registries: one per account, in its region."""

from __future__ import annotations

import sqlalchemy as sa

from cargohold.metadata.schema import (
    registries,
)
from cargohold.metadata.sql import SqlStore


class SqlRegistries(SqlStore):
    """The registries: one per account, in its region."""

    async def ensure_registry(self, account_id: str, region: str, now: float) -> None:
        stmt = self._insert(registries).values(account_id=account_id, region=region, created_at=now)
        await self.conn.execute(stmt.on_conflict_do_nothing(index_elements=["account_id"]))

    async def list_registries(self) -> list[tuple[str, str, float]]:
        """(account id, region, created at) of every registry, by account id."""
        rows = await self.conn.execute(sa.select(registries).order_by(registries.c.account_id))
        return [(row.account_id, row.region, float(row.created_at)) for row in rows]

    async def registry_exists(self, account_id: str) -> bool:
        row = (
            await self.conn.execute(
                sa.select(registries.c.account_id).where(registries.c.account_id == account_id)
            )
        ).first()
        return row is not None

    async def delete_registry(self, account_id: str) -> bool:
        result = await self.conn.execute(
            sa.delete(registries).where(registries.c.account_id == account_id)
        )
        return bool(result.rowcount)
