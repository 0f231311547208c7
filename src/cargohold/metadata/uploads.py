"""Upload sessions: offset, resumable hash state and driver state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cargohold.domain.records import (
    Upload,
)
from cargohold.metadata.schema import (
    uploads,
)
from cargohold.metadata.sql import SqlStore


def _upload(row: Any) -> Upload:
    return Upload(
        id=row.id,
        repository_id=row.repository_id,
        offset=row.offset,
        hash_algorithm=row.hash_algorithm,
        hash_state=bytes(row.hash_state) if row.hash_state is not None else None,
        driver_state=dict(row.driver_state),
        created_at=row.created_at,
        updated_at=row.updated_at,
        part_count=row.part_count,
        last_part_size=row.last_part_size,
        smallest_earlier_part=row.smallest_earlier_part,
    )


class SqlUploads(SqlStore):
    """Upload sessions: offset, resumable hash state and driver state."""

    async def create_upload(
        self,
        upload_id: str,
        repository_id: int,
        hash_algorithm: str,
        hash_state: bytes | None,
        driver_state: dict[str, Any],
        now: float,
        *,
        limit: int | None = None,
        live_since: float = 0.0,
    ) -> bool:
        """Record a new session; with `limit`, only while the repository holds fewer sessions
        than that updated at or after `live_since` (whether it was recorded): one statement,
        the count inside it. SQLite's writers queue, so the count holds; concurrent PostgreSQL
        writers may pass it by the number of them."""
        values: dict[str, Any] = {
            "id": upload_id,
            "repository_id": repository_id,
            "offset": 0,
            "hash_algorithm": hash_algorithm,
            "hash_state": hash_state,
            "driver_state": driver_state,
            "created_at": now,
            "updated_at": now,
        }
        if limit is None:
            await self.conn.execute(sa.insert(uploads).values(**values))
            return True
        open_sessions = (
            sa.select(sa.func.count())
            .select_from(uploads)
            .where(uploads.c.repository_id == repository_id, uploads.c.updated_at >= live_since)
            .scalar_subquery()
        )
        row = sa.select(*(self._typed(name, value) for name, value in values.items())).where(
            open_sessions < limit
        )
        # RETURNING says whether the row went in (psycopg reports no rowcount for this form).
        inserted = await self.conn.execute(
            sa.insert(uploads).from_select(list(values), row).returning(uploads.c.id)
        )
        return inserted.first() is not None

    def _typed(self, name: str, value: Any) -> sa.ColumnElement[Any]:
        """`value` as a value of column `name` in a SELECT list (PostgreSQL types a bare
        parameter there as text, which a JSON column does not take)."""
        column_type = uploads.c[name].type
        literal = sa.literal(value, type_=column_type)
        return (sa.cast(literal, column_type) if self._postgres else literal).label(name)

    async def get_upload(self, upload_id: str) -> Upload | None:
        row = (await self.conn.execute(sa.select(uploads).where(uploads.c.id == upload_id))).first()
        return _upload(row) if row else None

    async def advance_upload(
        self,
        upload_id: str,
        *,
        from_offset: int,
        to_offset: int,
        hash_state: bytes | None,
        driver_state: dict[str, Any],
        now: float,
        part_count: int,
        last_part_size: int | None,
        smallest_earlier_part: int | None,
    ) -> bool:
        """Move the upload forward only if nobody else moved it since `from_offset` was read."""
        result = await self.conn.execute(
            sa.update(uploads)
            .where(uploads.c.id == upload_id, uploads.c.offset == from_offset)
            .values(
                offset=to_offset,
                hash_state=hash_state,
                driver_state=driver_state,
                updated_at=now,
                part_count=part_count,
                last_part_size=last_part_size,
                smallest_earlier_part=smallest_earlier_part,
            )
        )
        return bool(result.rowcount)

    async def delete_upload(self, upload_id: str) -> bool:
        result = await self.conn.execute(sa.delete(uploads).where(uploads.c.id == upload_id))
        return bool(result.rowcount)

    async def stale_uploads(
        self, before: float, *, after: str = "", limit: int = 500
    ) -> list[Upload]:
        """Up to `limit` sessions last updated before `before`, by id, the ids past `after`."""
        rows = await self.conn.execute(
            sa.select(uploads)
            .where(uploads.c.updated_at < before, uploads.c.id > after)
            .order_by(uploads.c.id)
            .limit(limit)
        )
        return [_upload(row) for row in rows]

    async def delete_stale_uploads(self, upload_ids: Sequence[str], before: float) -> list[str]:
        """Delete those of the sessions still last updated before `before`; their ids."""
        if not upload_ids:
            return []
        rows = await self.conn.execute(
            sa.delete(uploads)
            .where(uploads.c.id.in_(list(upload_ids)), uploads.c.updated_at < before)
            .returning(uploads.c.id)
        )
        return [row.id for row in rows]

    async def upload_ids_among(self, upload_ids: Sequence[str]) -> set[str]:
        """The ids among `upload_ids` that name a session."""
        if not upload_ids:
            return set()
        rows = await self.conn.execute(
            sa.select(uploads.c.id).where(uploads.c.id.in_(list(upload_ids)))
        )
        return {row.id for row in rows}
