"""Blobs and the links that let a repository read them."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from cargohold.metadata.schema import (
    blobs,
    manifest_blobs,
    manifests,
    repositories,
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
                    blobs.c.quarantined.is_(False),
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
                blobs.c.quarantined.is_(False),
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
        await self.reserve_blob(digest, size, now)
        await self.link_blob(repository_id, digest, now)

    async def reserve_blob(self, digest: str, size: int, now: float) -> None:
        """Record the blob (or touch it, and take it back from garbage collection), holding
        its row until the transaction ends: its bytes may be written then."""
        stmt = self._insert(blobs).values(
            digest=digest, size=size, created_at=now, touched_at=now, deleting=False
        )
        await self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["digest"],
                set_={"touched_at": now, "deleting": False, "quarantined": False, "size": size},
            )
        )

    async def touch_blobs(self, digests: Iterable[str], now: float) -> int:
        """Mark blobs in use now, holding their rows until the transaction ends; how many of
        them exist and are not condemned."""
        wanted = sorted(set(digests))
        if not wanted:
            return 0
        held = await self._lock(
            sa.select(blobs.c.digest).where(blobs.c.digest.in_(wanted), blobs.c.deleting.is_(False))
        )
        if held:
            await self.conn.execute(
                sa.update(blobs).where(blobs.c.digest.in_(held)).values(touched_at=now)
            )
        return len(held)

    async def _lock(self, query: sa.Select[tuple[str]]) -> list[str]:
        """The digests `query` selects, their rows locked one after the other in digest
        order: every transaction that holds several blob rows takes them in the same order,
        so two never wait for each other."""
        rows = await self.conn.execute(query.order_by(blobs.c.digest).with_for_update())
        return [row.digest for row in rows]

    async def unreferenced_blobs(
        self, cutoff: float, *, after: str, limit: int
    ) -> list[tuple[str, int]]:
        """(digest, size) of blobs no manifest references, untouched since before `cutoff`,
        and of condemned ones; by digest, after `after`."""
        referenced = sa.exists().where(manifest_blobs.c.digest == blobs.c.digest)
        rows = await self.conn.execute(
            sa.select(blobs.c.digest, blobs.c.size)
            .where(
                sa.or_(
                    blobs.c.deleting.is_(True),
                    sa.and_(blobs.c.touched_at < cutoff, ~referenced),
                ),
                blobs.c.digest > after,
            )
            .order_by(blobs.c.digest)
            .limit(limit)
        )
        return [(row.digest, int(row.size)) for row in rows]

    async def condemn_blobs(self, digests: Iterable[str], cutoff: float) -> list[str]:
        """Of these blobs, those still untouched since before `cutoff` (or condemned already)
        and referenced by no manifest: marked condemned, their repository links removed."""
        wanted = sorted(set(digests))
        if not wanted:
            return []
        # Lock first; the references are read by a later statement, which sees every push
        # that committed while this one waited for a row (READ COMMITTED: a snapshot per
        # statement).
        candidates = await self._lock(
            sa.select(blobs.c.digest).where(
                blobs.c.digest.in_(wanted),
                sa.or_(blobs.c.deleting.is_(True), blobs.c.touched_at < cutoff),
            )
        )
        if not candidates:
            return []
        referenced = {
            row.digest
            for row in await self.conn.execute(
                sa.select(manifest_blobs.c.digest)
                .where(manifest_blobs.c.digest.in_(candidates))
                .distinct()
            )
        }
        doomed = [d for d in candidates if d not in referenced]
        if doomed:
            await self.conn.execute(
                sa.delete(repository_blobs).where(repository_blobs.c.digest.in_(doomed))
            )
            await self.conn.execute(
                sa.update(blobs).where(blobs.c.digest.in_(doomed)).values(deleting=True)
            )
        return doomed

    async def lock_condemned(self, digests: Iterable[str]) -> list[str]:
        """The condemned blobs among these, their rows held until the transaction ends."""
        wanted = sorted(set(digests))
        if not wanted:
            return []
        return await self._lock(
            sa.select(blobs.c.digest).where(blobs.c.digest.in_(wanted), blobs.c.deleting.is_(True))
        )

    async def delete_blob_rows(self, digests: Iterable[str]) -> None:
        wanted = sorted(set(digests))
        if wanted:
            await self.conn.execute(sa.delete(blobs).where(blobs.c.digest.in_(wanted)))

    async def known_blobs(self, digests: Iterable[str]) -> set[str]:
        """The digests among these that have a row (condemned or not)."""
        wanted = sorted(set(digests))
        if not wanted:
            return set()
        rows = await self.conn.execute(sa.select(blobs.c.digest).where(blobs.c.digest.in_(wanted)))
        return {row.digest for row in rows}

    async def claim_orphan(self, digest: str, now: float) -> bool:
        """Hold a condemned row for bytes no row describes, unless one exists (or is being
        recorded); whether it was claimed."""
        stmt = (
            self._insert(blobs)
            .values(digest=digest, size=0, created_at=now, touched_at=now, deleting=True)
            .on_conflict_do_nothing(index_elements=["digest"])
            .returning(blobs.c.digest)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def referenced_blob_sizes(self) -> dict[str, int]:
        """Every blob some manifest references, with its size."""
        rows = await self.conn.execute(
            sa.select(blobs.c.digest, blobs.c.size).where(
                sa.exists().where(manifest_blobs.c.digest == blobs.c.digest)
            )
        )
        return {row.digest: int(row.size) for row in rows}

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

    # -- scrub ------------------------------------------------------------------------------

    async def blobs_to_scrub(
        self, repository_id: int | None, *, after: str, limit: int
    ) -> list[tuple[str, int]]:
        """(digest, size) of the stored blobs (of one repository: those it may read), by
        digest, after `after`; condemned and quarantined ones left out."""
        query = sa.select(blobs.c.digest, blobs.c.size).where(
            blobs.c.deleting.is_(False), blobs.c.quarantined.is_(False), blobs.c.digest > after
        )
        if repository_id is not None:
            query = query.where(
                sa.exists().where(
                    repository_blobs.c.digest == blobs.c.digest,
                    repository_blobs.c.repository_id == repository_id,
                )
            )
        rows = await self.conn.execute(query.order_by(blobs.c.digest).limit(limit))
        return [(row.digest, int(row.size)) for row in rows]

    async def lock_blob(self, digest: str) -> bool:
        """Hold the blob's row (stored, not condemned) until the transaction ends."""
        return bool(
            await self._lock(
                sa.select(blobs.c.digest).where(
                    blobs.c.digest == digest, blobs.c.deleting.is_(False)
                )
            )
        )

    async def quarantine_blob(self, digest: str) -> None:
        await self.conn.execute(
            sa.update(blobs).where(blobs.c.digest == digest).values(quarantined=True)
        )

    async def images_using(self, digests: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """For each blob: (repository name, manifest digest) of every manifest referencing it."""
        wanted = sorted(set(digests))
        if not wanted:
            return {}
        rows = await self.conn.execute(
            sa.select(manifest_blobs.c.digest, repositories.c.name, manifests.c.digest.label("m"))
            .select_from(
                manifest_blobs.join(manifests, manifests.c.id == manifest_blobs.c.manifest_id).join(
                    repositories, repositories.c.id == manifests.c.repository_id
                )
            )
            .where(manifest_blobs.c.digest.in_(wanted))
            .order_by(repositories.c.name, manifests.c.digest)
        )
        found: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            found.setdefault(row.digest, []).append((row.name, row.m))
        return found
