"""Upload sessions: offset, resumable hash state and driver state."""

from __future__ import annotations

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
    ) -> None:
        await self.conn.execute(
            sa.insert(uploads).values(
                id=upload_id,
                repository_id=repository_id,
                offset=0,
                hash_algorithm=hash_algorithm,
                hash_state=hash_state,
                driver_state=driver_state,
                created_at=now,
                updated_at=now,
            )
        )

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

    async def stale_uploads(self, before: float) -> list[Upload]:
        rows = await self.conn.execute(sa.select(uploads).where(uploads.c.updated_at < before))
        return [_upload(row) for row in rows]
