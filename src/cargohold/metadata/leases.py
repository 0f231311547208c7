"""Named leases (`ports.work.Leases`): one holder per name across every process of a database.

Taking a lease is one conditional write: an insert when the name is new, else an update that
only applies when the lease ran out or is the holder's own. Two processes racing for a free name
are decided by the database (the primary key, and the row lock the update takes), so both never
believe they hold it."""

from __future__ import annotations

import sqlalchemy as sa

from cargohold.metadata.schema import leases
from cargohold.metadata.sql import SqlStore


class SqlLeases(SqlStore):
    async def acquire(self, name: str, holder: str, now: float, until: float) -> bool:
        inserted = await self.conn.execute(
            self._insert(leases)
            .values(name=name, holder=holder, expires_at=until)
            .on_conflict_do_nothing(index_elements=[leases.c.name])
            .returning(leases.c.name)
        )
        if inserted.first() is not None:
            return True
        updated = await self.conn.execute(
            sa.update(leases)
            .where(
                leases.c.name == name,
                sa.or_(leases.c.holder == holder, leases.c.expires_at < now),
            )
            .values(holder=holder, expires_at=until)
        )
        return bool(updated.rowcount)

    async def release(self, name: str, holder: str) -> bool:
        result = await self.conn.execute(
            sa.delete(leases).where(leases.c.name == name, leases.c.holder == holder)
        )
        return bool(result.rowcount)

    async def holder(self, name: str, now: float) -> str | None:
        row = (
            await self.conn.execute(
                sa.select(leases.c.holder).where(leases.c.name == name, leases.c.expires_at >= now)
            )
        ).first()
        return None if row is None else str(row.holder)
