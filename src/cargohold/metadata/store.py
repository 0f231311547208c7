"""Queries over the metadata database, grouped in one transaction object per unit of work.

`MetadataStore.read()` / `.write()` open a transaction and hand out a `Tx` whose methods speak the
registry's words (repository, blob link, manifest, tag, upload). The same statements run on
SQLite and PostgreSQL; conflicts use each dialect's `ON CONFLICT` so concurrent pushes of the
same blob or tag resolve inside the database, not in Python.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cargohold.domain.errors import RepositoryAlreadyExists
from cargohold.domain.records import Manifest, ManifestSummary, Repository, Upload
from cargohold.metadata import database
from cargohold.metadata.schema import (
    account_settings,
    blobs,
    creation_templates,
    manifest_blobs,
    manifest_children,
    manifests,
    registries,
    repositories,
    repository_blobs,
    resource_tags,
    tags,
    uploads,
)


class Changes(enum.Enum):
    """What a write transaction may change, as far as `service.readcache` is concerned."""

    #: Nothing any cache keeps: audit events, upload progress, pull times.
    NOTHING = "nothing"
    #: What repositories hold (blob links, manifests, tags), and nothing of who may do what.
    CONTENT = "content"
    #: Anything: identities, policies, repository settings, and content too.
    ANYTHING = "anything"


class MetadataStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        #: Moves on with every write that may change cached reads other than content.
        self.generation = 0
        #: Moves on with every write that may change cached content (and with `generation`).
        self.content_generation = 0

    @classmethod
    def from_url(cls, url: str) -> MetadataStore:
        return cls(database.create_engine(url))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with database.transaction(self.engine, write=False) as conn:
            yield Tx(conn)

    @asynccontextmanager
    async def write(self, *, changes: Changes = Changes.ANYTHING) -> AsyncIterator[Tx]:
        """A write transaction. Committing it moves on the generations of what it `changes`,
        which drops the cached reads of this process that depend on them: a push
        (`Changes.CONTENT`) keeps the cached principals, policies and decisions."""
        try:
            async with database.transaction(self.engine, write=True) as conn:
                yield Tx(conn)
        finally:
            if changes is not Changes.NOTHING:
                self.content_generation += 1
            if changes is Changes.ANYTHING:
                self.generation += 1

    async def close(self) -> None:
        await self.engine.dispose()


def _repository(row: Any) -> Repository:
    return Repository(
        id=row.id,
        registry_id=row.registry_id,
        name=row.name,
        created_at=row.created_at,
        tag_mutability=row.tag_mutability,
        tag_mutability_filters=list(row.tag_mutability_filters or []),
        scan_on_push=bool(row.scan_on_push),
        encryption=dict(row.encryption or {}),
    )


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
    )


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


class Tx:
    """One transaction. Methods are the registry's metadata operations."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._dialect = conn.dialect.name

    def _lexical(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        """Byte-wise ordering, as the OCI spec's lexical order means, whatever the DB locale."""
        return column.collate("C") if self._dialect == "postgresql" else column

    def _insert(self, table: sa.Table) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- registries -------------------------------------------------------------------------

    async def ensure_registry(self, account_id: str, region: str, now: float) -> None:
        stmt = self._insert(registries).values(account_id=account_id, region=region, created_at=now)
        await self.conn.execute(stmt.on_conflict_do_nothing(index_elements=["account_id"]))

    async def list_registries(self) -> list[tuple[str, str, float]]:
        """(account id, region, created at) of every registry, by account id."""
        rows = await self.conn.execute(sa.select(registries).order_by(registries.c.account_id))
        return [(row.account_id, row.region, float(row.created_at)) for row in rows]

    # -- repositories -----------------------------------------------------------------------

    async def get_repository(self, registry_id: str, name: str) -> Repository | None:
        row = (
            await self.conn.execute(
                sa.select(repositories).where(
                    repositories.c.registry_id == registry_id, repositories.c.name == name
                )
            )
        ).first()
        return _repository(row) if row else None

    async def create_repository(
        self, registry_id: str, name: str, now: float, **settings: Any
    ) -> Repository:
        stmt = (
            self._insert(repositories)
            .values(registry_id=registry_id, name=name, created_at=now, **settings)
            .on_conflict_do_nothing(index_elements=["registry_id", "name"])
            .returning(*repositories.c)
        )
        row = (await self.conn.execute(stmt)).first()
        if row is None:
            raise RepositoryAlreadyExists(
                f"The repository with name '{name}' already exists in the registry "
                f"with id '{registry_id}'"
            )
        return _repository(row)

    async def update_repository(self, repository_id: int, **values: Any) -> None:
        await self.conn.execute(
            sa.update(repositories).where(repositories.c.id == repository_id).values(**values)
        )

    async def list_repositories(
        self, registry_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[Repository]:
        query = (
            sa.select(repositories)
            .where(repositories.c.registry_id == registry_id)
            .order_by(self._lexical(repositories.c.name))
        )
        if after is not None:
            query = query.where(self._lexical(repositories.c.name) > after)
        if limit is not None:
            query = query.limit(limit)
        return [_repository(row) for row in await self.conn.execute(query)]

    async def delete_repository(self, repository_id: int) -> None:
        await self.conn.execute(sa.delete(repositories).where(repositories.c.id == repository_id))

    async def count_manifests(self, repository_id: int) -> int:
        result = await self.conn.execute(
            sa.select(sa.func.count())
            .select_from(manifests)
            .where(manifests.c.repository_id == repository_id)
        )
        return int(result.scalar_one())

    # -- blobs ------------------------------------------------------------------------------

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

    # -- uploads ----------------------------------------------------------------------------

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

    # -- manifests --------------------------------------------------------------------------

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
        return manifest_id, True

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

    # -- tags -------------------------------------------------------------------------------

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

    # == ECR control plane: registries, resource tags, account settings, creation templates ==
    # (service/repositories.py is their one caller)

    async def registry_exists(self, account_id: str) -> bool:
        row = (
            await self.conn.execute(
                sa.select(registries.c.account_id).where(registries.c.account_id == account_id)
            )
        ).first()
        return row is not None

    async def resource_tags(self, repository_id: int) -> dict[str, str]:
        rows = await self.conn.execute(
            sa.select(resource_tags.c.key, resource_tags.c.value)
            .where(resource_tags.c.repository_id == repository_id)
            .order_by(self._lexical(resource_tags.c.key))
        )
        return {row.key: row.value for row in rows}

    async def put_resource_tags(self, repository_id: int, values: dict[str, str]) -> None:
        """Add or overwrite tags; tags not named are left as they are."""
        for key, value in values.items():
            stmt = self._insert(resource_tags).values(
                repository_id=repository_id, key=key, value=value
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["repository_id", "key"], set_={"value": stmt.excluded.value}
            )
            await self.conn.execute(stmt)

    async def delete_resource_tags(self, repository_id: int, keys: Iterable[str]) -> None:
        wanted = sorted(set(keys))
        if wanted:
            await self.conn.execute(
                sa.delete(resource_tags).where(
                    resource_tags.c.repository_id == repository_id,
                    resource_tags.c.key.in_(wanted),
                )
            )

    async def get_account_setting(self, registry_id: str, name: str) -> str | None:
        row = (
            await self.conn.execute(
                sa.select(account_settings.c.value).where(
                    account_settings.c.registry_id == registry_id,
                    account_settings.c.name == name,
                )
            )
        ).first()
        return str(row.value) if row else None

    async def put_account_setting(self, registry_id: str, name: str, value: str) -> None:
        stmt = self._insert(account_settings).values(
            registry_id=registry_id, name=name, value=value
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["registry_id", "name"], set_={"value": stmt.excluded.value}
        )
        await self.conn.execute(stmt)

    @staticmethod
    def _template(row: Any) -> dict[str, Any]:
        """A template as ECR shapes it: its document plus prefix and timestamps."""
        return {
            **dict(row.document or {}),
            "prefix": row.prefix,
            "createdAt": row.created_at,
            "updatedAt": row.updated_at,
        }

    async def get_creation_template(self, registry_id: str, prefix: str) -> dict[str, Any] | None:
        row = (
            await self.conn.execute(
                sa.select(creation_templates).where(
                    creation_templates.c.registry_id == registry_id,
                    creation_templates.c.prefix == prefix,
                )
            )
        ).first()
        return self._template(row) if row else None

    async def insert_creation_template(
        self, registry_id: str, prefix: str, document: dict[str, Any], now: float
    ) -> bool:
        """Insert the template unless one has this prefix already; whether it was inserted."""
        stmt = (
            self._insert(creation_templates)
            .values(
                registry_id=registry_id,
                prefix=prefix,
                document=document,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["registry_id", "prefix"])
            .returning(creation_templates.c.prefix)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def update_creation_template(
        self, registry_id: str, prefix: str, document: dict[str, Any], now: float
    ) -> bool:
        result = await self.conn.execute(
            sa.update(creation_templates)
            .where(
                creation_templates.c.registry_id == registry_id,
                creation_templates.c.prefix == prefix,
            )
            .values(document=document, updated_at=now)
        )
        return bool(result.rowcount)

    async def delete_creation_template(self, registry_id: str, prefix: str) -> bool:
        result = await self.conn.execute(
            sa.delete(creation_templates).where(
                creation_templates.c.registry_id == registry_id,
                creation_templates.c.prefix == prefix,
            )
        )
        return bool(result.rowcount)

    async def list_creation_templates(
        self,
        registry_id: str,
        *,
        prefixes: Iterable[str] | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        query = (
            sa.select(creation_templates)
            .where(creation_templates.c.registry_id == registry_id)
            .order_by(self._lexical(creation_templates.c.prefix))
        )
        if prefixes is not None:
            query = query.where(creation_templates.c.prefix.in_(sorted(set(prefixes))))
        if after is not None:
            query = query.where(self._lexical(creation_templates.c.prefix) > after)
        if limit is not None:
            query = query.limit(limit)
        return [self._template(row) for row in await self.conn.execute(query)]

    # == ECR images: listings, reachability and referrers (service/images.py is their caller) ==

    async def image_id_page(
        self,
        repository_id: int,
        *,
        tagged: bool | None,
        after: tuple[int, str | None] | None,
        limit: int,
    ) -> list[tuple[int, str, str | None]]:
        """(manifest id, digest, tag) rows: one per tag, one tagless row per untagged manifest,
        in push order then tag order, after the keyset `after`."""
        joined = manifests.outerjoin(tags, tags.c.manifest_id == manifests.c.id)
        tag = self._lexical(tags.c.name)
        query = sa.select(manifests.c.id, manifests.c.digest, tags.c.name.label("tag")).select_from(
            joined
        )
        query = query.where(manifests.c.repository_id == repository_id)
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
        self, repository_id: int, *, tagged: bool | None, after_id: int | None, limit: int
    ) -> list[Manifest]:
        """Manifests of a repository in push order, after the manifest id `after_id`."""
        query = sa.select(manifests).where(manifests.c.repository_id == repository_id)
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
    ) -> list[Manifest]:
        """Manifests whose subject is `subject_digest`, in digest order, after `after_digest`."""
        query = sa.select(manifests).where(
            manifests.c.repository_id == repository_id,
            manifests.c.subject_digest == subject_digest,
        )
        if artifact_types:
            query = query.where(manifests.c.artifact_type.in_(sorted(set(artifact_types))))
        if after_digest is not None:
            query = query.where(self._lexical(manifests.c.digest) > after_digest)
        query = query.order_by(self._lexical(manifests.c.digest)).limit(limit)
        return [_manifest(row) for row in await self.conn.execute(query)]
