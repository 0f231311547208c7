"""CloudWatch Logs groups, streams and events (`ports.logs.LogStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cargohold.metadata.schema import log_events, log_groups, log_streams
from cargohold.metadata.sql import SqlStore
from cargohold.ports.logs import EventQuery, LogEvent, LogGroup, LogStream


def _stream(row: Any) -> LogStream:
    return LogStream(
        row.id,
        row.name,
        row.created_at,
        row.first_event,
        row.last_event,
        row.last_ingestion,
        row.stored_bytes,
    )


class SqlLogs(SqlStore):
    async def insert_group(
        self, account: str, name: str, created_at: int, tags: dict[str, str]
    ) -> bool:
        stmt = (
            self._insert(log_groups)
            .values(account_id=account, name=name, created_at=created_at, tags=tags)
            .on_conflict_do_nothing(index_elements=["account_id", "name"])
            .returning(log_groups.c.id)
        )
        return (await self.conn.execute(stmt)).first() is not None

    def _groups(self) -> Any:
        stored = (
            sa.select(sa.func.coalesce(sa.func.sum(log_streams.c.stored_bytes), 0))
            .where(log_streams.c.group_id == log_groups.c.id)
            .scalar_subquery()
        )
        return sa.select(log_groups, stored.label("stored_bytes"))

    @staticmethod
    def _group(row: Any) -> LogGroup:
        return LogGroup(row.id, row.name, row.created_at, row.retention_days, int(row.stored_bytes))

    async def group(self, account: str, name: str) -> LogGroup | None:
        row = (
            await self.conn.execute(
                self._groups().where(log_groups.c.account_id == account, log_groups.c.name == name)
            )
        ).first()
        return self._group(row) if row else None

    async def groups(self, account: str, prefix: str) -> list[LogGroup]:
        query = self._groups().where(log_groups.c.account_id == account)
        if prefix:
            query = query.where(sa.func.substr(log_groups.c.name, 1, len(prefix)) == prefix)
        query = query.order_by(self._lexical(log_groups.c.name))
        return [self._group(row) for row in await self.conn.execute(query)]

    async def delete_group(self, account: str, name: str) -> bool:
        result = await self.conn.execute(
            sa.delete(log_groups).where(
                log_groups.c.account_id == account, log_groups.c.name == name
            )
        )
        return bool(result.rowcount)

    async def insert_stream(self, group_id: int, name: str, created_at: int) -> bool:
        stmt = (
            self._insert(log_streams)
            .values(group_id=group_id, name=name, created_at=created_at, stored_bytes=0)
            .on_conflict_do_nothing(index_elements=["group_id", "name"])
            .returning(log_streams.c.id)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def streams(self, group_id: int, prefix: str = "") -> list[LogStream]:
        query = sa.select(log_streams).where(log_streams.c.group_id == group_id)
        if prefix:
            query = query.where(sa.func.substr(log_streams.c.name, 1, len(prefix)) == prefix)
        query = query.order_by(self._lexical(log_streams.c.name))
        return [_stream(row) for row in await self.conn.execute(query)]

    async def append(
        self, stream: LogStream, events: Sequence[tuple[int, str]], ingested_at: int
    ) -> None:
        if not events:
            return
        rows = [
            {"stream_id": stream.id, "timestamp": t, "ingested_at": ingested_at, "message": m}
            for t, m in events
        ]
        await self._insert_many(log_events, rows)
        first = min(t for t, _ in events)
        last = max(t for t, _ in events)
        size = sum(len(m.encode()) for _, m in events)
        await self.conn.execute(
            sa.update(log_streams)
            .where(log_streams.c.id == stream.id)
            .values(
                first_event=sa.case(
                    (log_streams.c.first_event.is_(None), first),
                    (log_streams.c.first_event > first, first),
                    else_=log_streams.c.first_event,
                ),
                last_event=sa.case(
                    (log_streams.c.last_event.is_(None), last),
                    (log_streams.c.last_event < last, last),
                    else_=log_streams.c.last_event,
                ),
                last_ingestion=ingested_at,
                stored_bytes=log_streams.c.stored_bytes + size,
            )
        )

    async def events(self, query: EventQuery) -> list[LogEvent]:
        select = (
            sa.select(log_events, log_streams.c.name.label("stream"))
            .join(log_streams, log_streams.c.id == log_events.c.stream_id)
            .where(log_events.c.stream_id.in_(list(query.stream_ids)))
        )
        if query.start is not None:
            select = select.where(log_events.c.timestamp >= query.start)
        if query.end is not None:
            select = select.where(log_events.c.timestamp < query.end)
        if query.after is not None:
            select = select.where(log_events.c.id > query.after)
        if query.before is not None:
            select = select.where(log_events.c.id < query.before)
        order = log_events.c.id.desc() if query.newest_first else log_events.c.id
        select = select.order_by(order).limit(query.limit)
        found = [
            LogEvent(row.id, row.stream, row.timestamp, row.ingested_at, row.message)
            for row in await self.conn.execute(select)
        ]
        return found
