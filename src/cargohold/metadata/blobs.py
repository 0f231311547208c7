"""Blobs and the links that let a repository read them."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from cargohold.metadata.schema import (
    blobs,
    repository_blobs,
)
from cargohold.metadata.sql import SqlStore


class SqlBlobs(SqlStore):
    """Blobs and the links that let a repository read them."""

    async def linked_blob_size(self, repository_id: int, digest: str) -> int | None:
        """The blob's size when the repository may read it, else None."""
        row = (
            await self.conn.execute(
                sa.select(blobs.c.size)
                .select_from(repository_blobs.join(blobs))
                .where(
                    repository_blobs.c.repository_id == repository_id,
                    repository_blobs.c.digest == digest,
                )
            )
        ).first()
        return int(row.size) if row else None

    async def linked_blob_sizes(self, repository_id: int, digests: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(digests))
        if not wanted:
            return {}
        rows = await self.conn.execute(
            sa.select(blobs.c.digest, blobs.c.size)
            .select_from(repository_blobs.join(blobs))
            .where(
                repository_blobs.c.repository_id == repository_id,
                repository_blobs.c.digest.in_(wanted),
            )
        )
        return {row.digest: int(row.size) for row in rows}

    async def blob_size(self, digest: str) -> int | None:
        row = (
            await self.conn.execute(sa.select(blobs.c.size).where(blobs.c.digest == digest))
        ).first()
        return int(row.size) if row else None

    async def add_blob(self, repository_id: int, digest: str, size: int, now: float) -> None:
        """Record a committed blob and link it to the repository (both idempotent)."""
        await self.conn.execute(
            self._insert(blobs)
            .values(digest=digest, size=size, created_at=now)
            .on_conflict_do_nothing(index_elements=["digest"])
        )
        await self.link_blob(repository_id, digest, now)

    async def link_blob(self, repository_id: int, digest: str, now: float) -> None:
        await self.conn.execute(
            self._insert(repository_blobs)
            .values(repository_id=repository_id, digest=digest, created_at=now)
            .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
        )

    async def unlink_blob(self, repository_id: int, digest: str) -> bool:
        result = await self.conn.execute(
            sa.delete(repository_blobs).where(
                repository_blobs.c.repository_id == repository_id,
                repository_blobs.c.digest == digest,
            )
        )
        return bool(result.rowcount)
