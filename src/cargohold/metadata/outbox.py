"""The event outbox (`ports.outbox.Outbox`): events written in the transaction of their change,
and the cursor of each delivery target.

Readers follow the outbox by id (`events_after(cursor)`), so ids must become visible in
ascending order: once a reader has seen id N, no id below N may commit later, or the reader's
cursor would pass it for ever. PostgreSQL hands out sequence values when a row is inserted, not
when its transaction commits, so two writers could commit N+1 before N. Every transaction that
appends therefore takes one transaction-scoped advisory lock first and holds it until it
commits or rolls back: the next writer can draw an id only after the previous one's ids are
committed (PostgreSQL makes a commit visible before it releases the transaction's locks) or
rolled back (a gap, never filled). SQLite has one writer at a time, so its order is the order
of commits already; AUTOINCREMENT keeps it from reusing the ids of pruned rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from cargohold.domain.ecrevents import EcrEvent
from cargohold.metadata.schema import event_cursors, event_outbox
from cargohold.metadata.sql import BATCH_ROWS, SqlStore
from cargohold.ports.outbox import OutboxRecord

#: The key of the advisory lock every appending transaction holds on PostgreSQL ("cargoevt"),
#: outside the 32-bit range the job queue's `hashtext` keys fall in.
OUTBOX_LOCK = 0x6361_7267_6F65_7674


class SqlOutbox(SqlStore):
    """The event outbox and the delivery cursors."""

    async def append_events(self, events: Sequence[EcrEvent]) -> None:
        if not events:
            return
        if self._postgres:
            await self.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(OUTBOX_LOCK)))
        rows = [
            {
                "created_at": event.time,
                "account_id": event.account,
                "repository_name": event.repository_name,
                "detail_type": event.detail_type,
                "document": event.to_json(),
            }
            for event in events
        ]
        for start in range(0, len(rows), BATCH_ROWS):
            await self.conn.execute(sa.insert(event_outbox), rows[start : start + BATCH_ROWS])

    async def events_after(self, after_id: int, limit: int) -> list[OutboxRecord]:
        query = (
            sa.select(event_outbox.c.id, event_outbox.c.created_at, event_outbox.c.document)
            .where(event_outbox.c.id > after_id)
            .order_by(event_outbox.c.id)
            .limit(limit)
        )
        return [
            OutboxRecord(int(row.id), float(row.created_at), row.document)
            for row in await self.conn.execute(query)
        ]

    async def last_event_id(self) -> int:
        value = await self.conn.scalar(sa.select(sa.func.max(event_outbox.c.id)))
        return int(value or 0)

    async def get_cursor(self, target: str) -> int:
        value = await self.conn.scalar(
            sa.select(event_cursors.c.last_id).where(event_cursors.c.target == target)
        )
        return int(value or 0)

    async def advance_cursor(self, target: str, expected: int, new: int, now: float) -> bool:
        if expected == 0:
            inserted = await self.conn.execute(
                self._insert(event_cursors)
                .values(target=target, last_id=new, updated_at=now)
                .on_conflict_do_nothing(index_elements=["target"])
                .returning(event_cursors.c.target)
            )
            if inserted.first() is not None:
                return True
        result = await self.conn.execute(
            sa.update(event_cursors)
            .where(event_cursors.c.target == target, event_cursors.c.last_id == expected)
            .values(last_id=new, updated_at=now)
        )
        return result.rowcount == 1

    async def cursors(self) -> dict[str, int]:
        rows = await self.conn.execute(sa.select(event_cursors.c.target, event_cursors.c.last_id))
        return {row.target: int(row.last_id) for row in rows}

    async def delete_cursor(self, target: str) -> bool:
        result = await self.conn.execute(
            sa.delete(event_cursors).where(event_cursors.c.target == target)
        )
        return result.rowcount == 1

    async def delete_events_through(self, event_id: int) -> int:
        result = await self.conn.execute(
            sa.delete(event_outbox).where(event_outbox.c.id <= event_id)
        )
        return int(result.rowcount)

    async def delete_events_before(self, created_before: float, through_id: int) -> int:
        result = await self.conn.execute(
            sa.delete(event_outbox).where(
                event_outbox.c.created_at < created_before, event_outbox.c.id <= through_id
            )
        )
        return int(result.rowcount)
