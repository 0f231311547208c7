"""The audit log's events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from cargohold.domain.records import StoredEvent
from cargohold.metadata.schema import (
    events,
)
from cargohold.metadata.sql import SqlStore


class SqlEvents(SqlStore):
    """The audit log's events."""

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
        newest: bool = False,
    ) -> list[StoredEvent]:
        """Events of one kind, oldest first (by time, then by id); `errors_only`: those with an
        error code. With `newest`, the `limit` newest of them (still oldest first)."""
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
        if newest:
            query = query.order_by(events.c.event_time.desc(), events.c.id.desc())
        else:
            query = query.order_by(events.c.event_time, events.c.id)
        if limit is not None:
            query = query.limit(limit)
        rows = list(await self.conn.execute(query))
        if newest:
            rows.reverse()
        return [
            StoredEvent(row.id, row.kind, float(row.event_time), dict(row.document)) for row in rows
        ]
