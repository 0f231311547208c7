"""Manifests, the tags that point at them, and the referrers of a subject."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from cargohold.domain.records import (
    Manifest,
    ManifestSummary,
)
from cargohold.metadata.schema import (
    manifest_blobs,
    manifest_children,
    manifests,
    tags,
)
from cargohold.metadata.sql import SqlStore


def _manifest(row: Any) -> Manifest:
    return Manifest(
        id=row.id,
        repository_id=row.repository_id,
        digest=row.digest,
        media_type=row.media_type,
        artifact_type=row.artifact_type,
        subject_digest=row.subject_digest,
        size=row.size,
        image_size=row.image_size,
        annotations=dict(row.annotations or {}),
        content=bytes(row.content),
        pushed_at=row.pushed_at,
        last_pulled_at=row.last_pulled_at,
        image_status=row.image_status,
        archived_at=row.archived_at,
        activated_at=row.activated_at,
    )


class SqlManifests(SqlStore):
    """Manifests, the tags that point at them, and the referrers of a subject."""

    async def count_manifests(self, repository_id: int) -> int:
        result = await self.conn.execute(
            sa.select(sa.func.count())
            .select_from(manifests)
            .where(manifests.c.repository_id == repository_id)
        )
        return int(result.scalar_one())

    async def get_manifest(self, repository_id: int, digest: str) -> Manifest | None:
        row = (
            await self.conn.execute(
                sa.select(manifests).where(
                    manifests.c.repository_id == repository_id, manifests.c.digest == digest
                )
            )
        ).first()
        return _manifest(row) if row else None

    async def get_tagged_manifest(self, repository_id: int, tag: str) -> Manifest | None:
        row = (
            await self.conn.execute(
                sa.select(manifests)
                .select_from(tags.join(manifests, tags.c.manifest_id == manifests.c.id))
                .where(tags.c.repository_id == repository_id, tags.c.name == tag)
            )
        ).first()
        return _manifest(row) if row else None

    async def existing_manifests(self, repository_id: int, digests: Iterable[str]) -> set[str]:
        wanted = sorted(set(digests))
        if not wanted:
            return set()
        rows = await self.conn.execute(
            sa.select(manifests.c.digest).where(
                manifests.c.repository_id == repository_id, manifests.c.digest.in_(wanted)
            )
        )
        return {row.digest for row in rows}

    async def put_manifest(
        self,
        *,
        repository_id: int,
        digest: str,
        media_type: str,
        artifact_type: str | None,
        subject_digest: str | None,
        content: bytes,
        image_size: int,
        annotations: dict[str, str],
        blob_digests: Sequence[str],
        child_digests: Sequence[str],
        now: float,
    ) -> tuple[int, bool]:
        """Insert the manifest unless present; return (id, created)."""
        stmt = (
            self._insert(manifests)
            .values(
                repository_id=repository_id,
                digest=digest,
                media_type=media_type,
                artifact_type=artifact_type,
                subject_digest=subject_digest,
                size=len(content),
                image_size=image_size,
                annotations=annotations,
                content=content,
                pushed_at=now,
            )
            .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
            .returning(manifests.c.id)
        )
        while (row := (await self.conn.execute(stmt)).first()) is None:
            # Present already. Hold it (FOR SHARE) so that a concurrent delete cannot remove it
            # before this transaction tags it; SQLite's single writer needs no lock.
            existing = (
                await self.conn.execute(
                    sa.select(manifests.c.id)
                    .where(manifests.c.repository_id == repository_id, manifests.c.digest == digest)
                    .with_for_update(read=True)
                )
            ).first()
            if existing is not None:
                return int(existing.id), False
            # Deleted between the insert and the lock: insert it afresh.
        manifest_id = int(row.id)
        await self._insert_references(manifest_id, blob_digests, child_digests)
        return manifest_id, True

    async def _insert_references(
        self, manifest_id: int, blob_digests: Sequence[str], child_digests: Sequence[str]
    ) -> None:
        """A new manifest's blobs and children, each digest once."""
        if blob_digests:
            await self.conn.execute(
                sa.insert(manifest_blobs),
                [{"manifest_id": manifest_id, "digest": d} for d in sorted(set(blob_digests))],
            )
        if child_digests:
            await self.conn.execute(
                sa.insert(manifest_children),
                [
                    {"manifest_id": manifest_id, "child_digest": d}
                    for d in sorted(set(child_digests))
                ],
            )

    async def delete_manifest(self, manifest_id: int) -> None:
        await self.conn.execute(sa.delete(manifests).where(manifests.c.id == manifest_id))

    async def record_pull(self, manifest_id: int, now: float) -> None:
        await self.conn.execute(
            sa.update(manifests).where(manifests.c.id == manifest_id).values(last_pulled_at=now)
        )

    async def referrers(
        self, repository_id: int, subject_digest: str, artifact_type: str | None
    ) -> list[Manifest]:
        query = (
            sa.select(manifests)
            .where(
                manifests.c.repository_id == repository_id,
                manifests.c.subject_digest == subject_digest,
            )
            .order_by(manifests.c.digest)
        )
        if artifact_type is not None:
            query = query.where(manifests.c.artifact_type == artifact_type)
        return [_manifest(row) for row in await self.conn.execute(query)]

    async def list_manifests(
        self,
        repository_id: int,
        *,
        digests: Iterable[str] | None = None,
        tagged: bool | None = None,
    ) -> list[ManifestSummary]:
        """Manifests of a repository with their tags, oldest push first."""
        query = sa.select(
            manifests.c.id,
            manifests.c.digest,
            manifests.c.media_type,
            manifests.c.artifact_type,
            manifests.c.size,
            manifests.c.image_size,
            manifests.c.annotations,
            manifests.c.pushed_at,
            manifests.c.last_pulled_at,
        ).where(manifests.c.repository_id == repository_id)
        if digests is not None:
            query = query.where(manifests.c.digest.in_(sorted(set(digests))))
        query = query.order_by(manifests.c.pushed_at, manifests.c.id)
        rows = list(await self.conn.execute(query))
        tag_rows = await self.conn.execute(
            sa.select(tags.c.manifest_id, tags.c.name)
            .where(tags.c.repository_id == repository_id)
            .order_by(tags.c.name)
        )
        by_manifest: dict[int, list[str]] = {}
        for tag_row in tag_rows:
            by_manifest.setdefault(tag_row.manifest_id, []).append(tag_row.name)
        result = []
        for row in rows:
            names = tuple(by_manifest.get(row.id, ()))
            if tagged is True and not names:
                continue
            if tagged is False and names:
                continue
            result.append(
                ManifestSummary(
                    id=row.id,
                    digest=row.digest,
                    media_type=row.media_type,
                    artifact_type=row.artifact_type,
                    size=row.size,
                    image_size=row.image_size,
                    annotations=dict(row.annotations or {}),
                    pushed_at=row.pushed_at,
                    last_pulled_at=row.last_pulled_at,
                    tags=names,
                )
            )
        return result

    async def tag_target(self, repository_id: int, tag: str) -> int | None:
        row = (
            await self.conn.execute(
                sa.select(tags.c.manifest_id).where(
                    tags.c.repository_id == repository_id, tags.c.name == tag
                )
            )
        ).first()
        return int(row.manifest_id) if row else None

    async def set_tag(self, repository_id: int, tag: str, manifest_id: int, now: float) -> None:
        stmt = self._insert(tags).values(
            repository_id=repository_id, name=tag, manifest_id=manifest_id, updated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["repository_id", "name"],
            set_={"manifest_id": stmt.excluded.manifest_id, "updated_at": stmt.excluded.updated_at},
        )
        await self.conn.execute(stmt)

    async def delete_tag(self, repository_id: int, tag: str) -> bool:
        result = await self.conn.execute(
            sa.delete(tags).where(tags.c.repository_id == repository_id, tags.c.name == tag)
        )
        return bool(result.rowcount)

    async def list_tags(
        self, repository_id: int, *, after: str | None = None, limit: int | None = None
    ) -> list[str]:
        query = (
            sa.select(tags.c.name)
            .where(tags.c.repository_id == repository_id)
            .order_by(self._lexical(tags.c.name))
        )
        if after is not None:
            query = query.where(self._lexical(tags.c.name) > after)
        if limit is not None:
            query = query.limit(limit)
        return [row.name for row in await self.conn.execute(query)]

    async def tags_of(self, manifest_id: int) -> list[str]:
        rows = await self.conn.execute(
            sa.select(tags.c.name).where(tags.c.manifest_id == manifest_id).order_by(tags.c.name)
        )
        return [row.name for row in rows]

    async def image_id_page(
        self,
        repository_id: int,
        *,
        tagged: bool | None,
        after: tuple[int, str | None] | None,
        limit: int,
        status: str | None = "ACTIVE",
    ) -> list[tuple[int, str, str | None]]:
        """(manifest id, digest, tag) rows: one per tag, one tagless row per untagged manifest,
        in push order then tag order, after the keyset `after`; of images in `status` (any
        when None)."""
        joined = manifests.outerjoin(tags, tags.c.manifest_id == manifests.c.id)
        tag = self._lexical(tags.c.name)
        query = sa.select(manifests.c.id, manifests.c.digest, tags.c.name.label("tag")).select_from(
            joined
        )
        query = query.where(manifests.c.repository_id == repository_id)
        if status is not None:
            query = query.where(manifests.c.image_status == status)
        if tagged is True:
            query = query.where(tags.c.name.is_not(None))
        elif tagged is False:
            query = query.where(tags.c.name.is_(None))
        if after is not None:
            after_id, after_tag = after
            if after_tag is None:
                query = query.where(manifests.c.id > after_id)
            else:
                query = query.where(
                    sa.or_(
                        manifests.c.id > after_id,
                        sa.and_(manifests.c.id == after_id, tag > after_tag),
                    )
                )
        query = query.order_by(manifests.c.id, tag).limit(limit)
        return [(row.id, row.digest, row.tag) for row in await self.conn.execute(query)]

    async def manifest_page(
        self,
        repository_id: int,
        *,
        tagged: bool | None,
        after_id: int | None,
        limit: int,
        status: str | None = "ACTIVE",
    ) -> list[Manifest]:
        """Manifests of a repository in push order, after the manifest id `after_id`; of
        images in `status` (any when None)."""
        query = sa.select(manifests).where(manifests.c.repository_id == repository_id)
        if status is not None:
            query = query.where(manifests.c.image_status == status)
        has_tag = sa.exists().where(tags.c.manifest_id == manifests.c.id)
        if tagged is True:
            query = query.where(has_tag)
        elif tagged is False:
            query = query.where(~has_tag)
        if after_id is not None:
            query = query.where(manifests.c.id > after_id)
        query = query.order_by(manifests.c.id).limit(limit)
        return [_manifest(row) for row in await self.conn.execute(query)]

    async def manifests_by_id(self, manifest_ids: Iterable[int]) -> list[Manifest]:
        wanted = sorted(set(manifest_ids))
        if not wanted:
            return []
        rows = await self.conn.execute(sa.select(manifests).where(manifests.c.id.in_(wanted)))
        return [_manifest(row) for row in rows]

    async def manifests_by_digest(
        self, repository_id: int, digests: Iterable[str]
    ) -> list[Manifest]:
        """The manifests of the repository with these digests, those that exist."""
        wanted = sorted(set(digests))
        if not wanted:
            return []
        rows = await self.conn.execute(
            sa.select(manifests).where(
                manifests.c.repository_id == repository_id, manifests.c.digest.in_(wanted)
            )
        )
        return [_manifest(row) for row in rows]

    async def tags_by_manifest(self, manifest_ids: Iterable[int]) -> dict[int, list[str]]:
        wanted = sorted(set(manifest_ids))
        if not wanted:
            return {}
        rows = await self.conn.execute(
            sa.select(tags.c.manifest_id, tags.c.name)
            .where(tags.c.manifest_id.in_(wanted))
            .order_by(self._lexical(tags.c.name))
        )
        found: dict[int, list[str]] = {}
        for row in rows:
            found.setdefault(row.manifest_id, []).append(row.name)
        return found

    async def manifest_parents(self, repository_id: int, child_digest: str) -> list[str]:
        """Digests of the repository's indexes that list `child_digest` as a child."""
        rows = await self.conn.execute(
            sa.select(manifests.c.digest)
            .select_from(
                manifest_children.join(manifests, manifests.c.id == manifest_children.c.manifest_id)
            )
            .where(
                manifests.c.repository_id == repository_id,
                manifest_children.c.child_digest == child_digest,
            )
            .order_by(manifests.c.digest)
        )
        return [row.digest for row in rows]

    async def blob_referrers(self, repository_id: int, digests: Iterable[str]) -> dict[str, int]:
        """For each blob some manifest of the repository references: one such manifest's id."""
        wanted = sorted(set(digests))
        if not wanted:
            return {}
        rows = await self.conn.execute(
            sa.select(manifest_blobs.c.digest, sa.func.min(manifests.c.id).label("manifest_id"))
            .select_from(
                manifest_blobs.join(manifests, manifests.c.id == manifest_blobs.c.manifest_id)
            )
            .where(manifests.c.repository_id == repository_id, manifest_blobs.c.digest.in_(wanted))
            .group_by(manifest_blobs.c.digest)
        )
        return {row.digest: int(row.manifest_id) for row in rows}

    async def referrer_page(
        self,
        repository_id: int,
        subject_digest: str,
        *,
        artifact_types: Sequence[str] | None,
        after_digest: str | None,
        limit: int,
        status: str | None = "ACTIVE",
    ) -> list[Manifest]:
        """Manifests whose subject is `subject_digest`, in digest order, after `after_digest`;
        in `status` (any when None)."""
        query = sa.select(manifests).where(
            manifests.c.repository_id == repository_id,
            manifests.c.subject_digest == subject_digest,
        )
        if status is not None:
            query = query.where(manifests.c.image_status == status)
        if artifact_types:
            query = query.where(manifests.c.artifact_type.in_(sorted(set(artifact_types))))
        if after_digest is not None:
            query = query.where(self._lexical(manifests.c.digest) > after_digest)
        query = query.order_by(self._lexical(manifests.c.digest)).limit(limit)
        return [_manifest(row) for row in await self.conn.execute(query)]
