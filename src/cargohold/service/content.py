"""Repositories, blobs, manifests, tags and referrers: the operations both fronts share."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from cargohold.domain.digest import Digest, is_digest
from cargohold.domain.ecrevents import DELETE, PUSH
from cargohold.domain.errors import (
    BlobUnknown,
    DigestInvalid,
    ImageTagAlreadyExists,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestReferencedUnknown,
    ManifestUnknown,
    NameUnknown,
    RepositoryAlreadyExists,
    SizeInvalid,
)
from cargohold.domain.manifest import MAX_MANIFEST_BYTES, ParsedManifest, negotiate, parse_manifest
from cargohold.domain.names import validate_repository_name, validate_tag
from cargohold.domain.principal import Principal
from cargohold.domain.records import Manifest, Repository
from cargohold.ports import Changes, Metadata, StorageDriver, Transaction
from cargohold.service.archive import restore
from cargohold.service.events import image_actions, refused_push, removed_images
from cargohold.service.paths import blob_key
from cargohold.service.pull_times import PULL_TIME_RESOLUTION as PULL_TIME_RESOLUTION
from cargohold.service.pull_times import PullTimes
from cargohold.service.readcache import ReadCache


@dataclass(frozen=True, slots=True)
class BlobLocation:
    digest: Digest
    size: int
    key: str
    local_path: str | None


@dataclass(frozen=True, slots=True)
class PushedManifest:
    manifest: Manifest
    parsed: ParsedManifest
    created: bool


def repository_not_found(name: str, registry_id: str) -> NameUnknown:
    return NameUnknown(
        f"The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
    )


def tag_is_immutable(repository: Repository, tag: str) -> bool:
    """ECR's tag mutability, including the `*_WITH_EXCLUSION` modes and their wildcard filters."""
    mode = repository.tag_mutability
    patterns = [f.get("filter", "") for f in repository.tag_mutability_filters]
    excluded = any(fnmatch.fnmatchcase(tag, p) for p in patterns if p)
    if mode == "IMMUTABLE":
        return True
    if mode == "IMMUTABLE_WITH_EXCLUSION":
        return not excluded
    if mode == "MUTABLE_WITH_EXCLUSION":
        return excluded
    return False


class PushTemplates(Protocol):
    """What repository creation templates decide for a `/v2/` push to a missing repository
    (service/templates.py answers)."""

    async def create_from_template(self, registry_id: str, name: str) -> Repository | None:
        """CREATE_ON_PUSH: the repository made from a matching template, or None."""
        ...

    async def creates_on_push(self, registry_id: str, name: str) -> bool:
        """Whether a CREATE_ON_PUSH template matches the name."""
        ...


class RepositoryRules(Protocol):
    """What the ECR control plane decides for `/v2/` mounts (service/repositories.py answers)."""

    async def blob_mounting_allowed(self, target: Repository, source: Repository) -> bool:
        """Whether a cross-repository mount may link the blob (BLOB_MOUNTING)."""
        ...


class PushHook(Protocol):
    """Told of every manifest a push creates (scan on push answers)."""

    async def manifest_pushed(
        self,
        tx: Transaction,
        repository: Repository,
        manifest_id: int,
        parsed: ParsedManifest,
        now: float,
    ) -> bool:
        """Inside the push's transaction; whether there is follow-up work to start."""
        ...

    def pushed(self) -> None:
        """After the push committed, when `manifest_pushed` said there is work."""
        ...


class ContentService:
    def __init__(
        self,
        store: Metadata,
        storage: StorageDriver,
        clock: Callable[[], float],
        *,
        registry_id: str,
        create_on_push: bool = False,
        rules: RepositoryRules | None = None,
        templates: PushTemplates | None = None,
        pull_times: PullTimes | None = None,
        region: str = "us-east-1",
    ) -> None:
        self._rules = rules
        self._templates = templates
        self._store = store
        self._repositories: ReadCache[tuple[str, str], Repository | None] = ReadCache(
            store, name="repositories"
        )
        # (repository id, tag or digest) -> manifest, and (repository id, digest) -> blob size:
        # what every pull asks, answered without the database while nothing changed.
        self._manifests: ReadCache[tuple[int, str], Manifest] = ReadCache(
            store, content=True, name="manifests"
        )
        self._blob_sizes: ReadCache[tuple[int, str], int | None] = ReadCache(
            store, content=True, name="blob-links"
        )
        #: Pulls are noted here and written in batches (service/pull_times.py).
        self.pull_times = pull_times or PullTimes(store, clock)
        self._storage = storage
        self._clock = clock
        self.registry_id = registry_id
        #: The region the registry's events name.
        self.region = region
        self._create_on_push = create_on_push
        self.push_hook: PushHook | None = None

    def now(self) -> float:
        """The service's clock."""
        return self._clock()

    # -- repositories -----------------------------------------------------------------------

    async def repository(self, name: str, registry_id: str | None = None) -> Repository:
        """The repository `name` of `registry_id` (this registry's own when None)."""
        registry_id = registry_id or self.registry_id
        validate_repository_name(name)

        async def load() -> Repository | None:
            async with self._store.read() as tx:
                return await tx.repositories.get_repository(registry_id, name)

        repository = await self._repositories.fetch(
            (registry_id, name), load, keep=lambda found: found is not None
        )
        if repository is None:
            raise repository_not_found(name, registry_id)
        return repository

    async def repository_for_push(
        self,
        name: str,
        registry_id: str | None = None,
        *,
        before_create: Callable[[], Awaitable[None]] | None = None,
    ) -> Repository:
        """The repository a push goes to, created first when the registry creates on push.

        `before_create` runs first when a missing repository is about to be created, and may
        refuse by raising (the `/v2/` front authorizes `ecr:CreateRepository` there)."""
        registry_id = registry_id or self.registry_id
        try:
            return await self.repository(name, registry_id)
        except NameUnknown:
            if before_create is not None and (
                self._create_on_push
                or (
                    self._templates is not None
                    and await self._templates.creates_on_push(registry_id, name)
                )
            ):
                await before_create()
            if self._templates is not None:
                created = await self._templates.create_from_template(registry_id, name)
                if created is not None:
                    return created
            if not self._create_on_push:
                raise
        try:
            async with self._store.write() as tx:
                existing = await tx.repositories.get_repository(registry_id, name)
                if existing is not None:
                    return existing
                return await tx.repositories.create_repository(registry_id, name, self._clock())
        except RepositoryAlreadyExists:
            # A concurrent first push created it after our read (PostgreSQL does not serialise
            # the two writers as SQLite does): use theirs.
            return await self.repository(name, registry_id)

    async def catalog(
        self, *, after: str | None, limit: int | None, registry_id: str | None = None
    ) -> list[str]:
        async with self._store.read() as tx:
            found = await tx.repositories.list_repositories(
                registry_id or self.registry_id, after=after, limit=limit
            )
        return [r.name for r in found]

    # -- blobs ------------------------------------------------------------------------------

    async def blob(self, repository: Repository, digest_text: str) -> BlobLocation:
        digest = Digest.parse(digest_text)

        async def load() -> int | None:
            async with self._store.read() as tx:
                return await tx.blobs.linked_blob_size(repository.id, str(digest))

        size = await self._blob_sizes.fetch(
            (repository.id, str(digest)), load, keep=lambda found: found is not None
        )
        if size is None:
            raise BlobUnknown(f"blob {digest} is not in repository {repository.name}")
        key = blob_key(digest)
        return BlobLocation(digest, size, key, self._storage.local_path(key))

    async def delete_blob(self, repository: Repository, digest_text: str) -> None:
        digest = Digest.parse(digest_text)
        async with self._store.write(changes=Changes.CONTENT) as tx:
            removed = await tx.blobs.unlink_blob(repository.id, str(digest))
        if not removed:
            raise BlobUnknown(f"blob {digest} is not in repository {repository.name}")

    async def mount_blob(
        self, repository: Repository, digest_text: str, source: Repository
    ) -> int | None:
        """Link a blob the source repository holds; its size, or None when the source lacks it
        or the registry's rules (BLOB_MOUNTING) do not allow the mount."""
        digest = Digest.parse(digest_text)
        if self._rules is not None and not await self._rules.blob_mounting_allowed(
            repository, source
        ):
            return None
        async with self._store.write(changes=Changes.CONTENT) as tx:
            size = await tx.blobs.linked_blob_size(source.id, str(digest))
            # Touched (and held) so that garbage collection leaves it for the push to come.
            if size is None or not await tx.blobs.touch_blobs([str(digest)], self._clock()):
                return None
            await tx.blobs.link_blob(repository.id, str(digest), self._clock())
        return size

    # -- manifests --------------------------------------------------------------------------

    async def put_manifest(
        self,
        repository: Repository,
        reference: str,
        raw: bytes,
        content_type: str | None,
    ) -> PushedManifest:
        if len(raw) > MAX_MANIFEST_BYTES:
            raise SizeInvalid(f"manifest is larger than the {MAX_MANIFEST_BYTES}-byte limit")
        tag: str | None = None
        if is_digest(reference):
            expected = Digest.parse(reference)
            digest = Digest.of(raw, expected.algorithm)
            if digest != expected:
                raise DigestInvalid(f"manifest digest {digest} does not match reference {expected}")
        else:
            tag = validate_tag(reference)
            digest = Digest.of(raw)
        parsed = parse_manifest(raw, content_type)
        now = self._clock()
        try:
            async with self._store.write(changes=Changes.CONTENT) as tx:
                manifest, created, follow_up = await self._store_manifest(
                    tx, repository, str(digest), tag, raw, parsed, now
                )
        except ImageTagAlreadyExists:
            await self._push_refused(repository, str(digest), tag, parsed, now)
            raise
        if follow_up and self.push_hook is not None:
            self.push_hook.pushed()
        return PushedManifest(manifest, parsed, created)

    async def _store_manifest(
        self,
        tx: Transaction,
        repository: Repository,
        digest: str,
        tag: str | None,
        raw: bytes,
        parsed: ParsedManifest,
        now: float,
    ) -> tuple[Manifest, bool, bool]:
        """The push inside its transaction: the manifest, whether it was created, whether the
        push hook has follow-up work."""
        image_size = await self._check_references(tx, repository, parsed)
        manifest_id, created = await tx.manifests.put_manifest(
            repository_id=repository.id,
            digest=digest,
            media_type=parsed.media_type,
            artifact_type=parsed.effective_artifact_type,
            subject_digest=str(parsed.subject.digest) if parsed.subject else None,
            content=raw,
            image_size=image_size,
            annotations=parsed.annotations,
            blob_digests=[str(d.digest) for d in parsed.blob_references],
            child_digests=[str(c.digest) for c in parsed.children],
            now=now,
        )
        changed = created
        if tag is not None:
            changed = await self._tag(tx, repository, tag, manifest_id, now) or changed
        manifest = await tx.manifests.get_manifest(repository.id, digest)
        if manifest is not None and manifest.image_status == "ARCHIVED":
            # Pushing an archived image again restores it.
            await restore(tx, [manifest.id], now)
            manifest = await tx.manifests.get_manifest(repository.id, digest)
            changed = True
        hook = self.push_hook
        follow_up = bool(
            created
            and hook is not None
            and await hook.manifest_pushed(tx, repository, manifest_id, parsed, now)
        )
        assert manifest is not None
        if changed:
            # A new image, a tag set or moved, an image restored: a push of the tag (or of the
            # digest alone), as ECR reports one. Last, as appending events must be.
            pushed = image_actions(PUSH, repository, self.region, [(manifest, tag)], now)
            await tx.outbox.append_events(pushed)
        return manifest, created, follow_up

    async def _push_refused(
        self,
        repository: Repository,
        digest: str,
        tag: str | None,
        parsed: ParsedManifest,
        now: float,
    ) -> None:
        """A push ECR reports as a FAILURE (an immutable tag): the push wrote nothing, so the
        event is a transaction of its own."""
        event = refused_push(repository, self.region, digest, tag, parsed, now)
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.outbox.append_events([event])

    async def _check_references(
        self, tx: Transaction, repository: Repository, parsed: ParsedManifest
    ) -> int:
        """Refuse a manifest whose blobs or children the repository lacks; return its image size."""
        wanted = parsed.blob_references
        digests = [str(d.digest) for d in wanted]
        sizes = await tx.blobs.linked_blob_sizes(repository.id, digests)
        # The referenced blobs are touched and their rows held until the manifest commits:
        # garbage collection waits for it, then sees the reference; a blob it condemned first
        # is not touched, and the push is refused below.
        if await tx.blobs.touch_blobs(sizes, self._clock()) != len(sizes):
            sizes = await tx.blobs.linked_blob_sizes(repository.id, digests)
        for descriptor in wanted:
            size = sizes.get(str(descriptor.digest))
            if size is None:
                raise ManifestBlobUnknown(
                    f"blob {descriptor.digest} is not in repository {repository.name}",
                    detail={"digest": str(descriptor.digest)},
                )
            if size != descriptor.size:
                raise ManifestInvalid(
                    f"descriptor of {descriptor.digest} says {descriptor.size} bytes, "
                    f"the blob has {size}"
                )
        if parsed.children:
            present = await tx.manifests.existing_manifests(
                repository.id, [str(c.digest) for c in parsed.children], hold=True
            )
            for child in parsed.children:
                if str(child.digest) not in present:
                    raise ManifestReferencedUnknown(
                        f"manifest {child.digest} is not in repository {repository.name}",
                        detail={"digest": str(child.digest)},
                    )
            return sum(c.size for c in parsed.children)
        return sum(layer.size for layer in parsed.layers)

    async def _tag(
        self, tx: Transaction, repository: Repository, tag: str, manifest_id: int, now: float
    ) -> bool:
        """Point `tag` at the manifest; whether it pointed elsewhere or nowhere before."""
        current = await tx.manifests.tag_target(repository.id, tag)
        if current == manifest_id:
            return False
        if current is not None and tag_is_immutable(repository, tag):
            raise ImageTagAlreadyExists(
                f"The image tag '{tag}' already exists in the '{repository.name}' repository "
                "and cannot be overwritten because the tag is immutable."
            )
        await tx.manifests.set_tag(repository.id, tag, manifest_id, now)
        return True

    async def manifest(
        self, repository: Repository, reference: str, *, accept: list[str] | None = None
    ) -> Manifest:
        async def load() -> Manifest:
            async with self._store.read() as tx:
                return await self._resolve(tx, repository, reference)

        manifest = self.with_pull_time(
            await self._manifests.fetch((repository.id, reference), load)
        )
        if manifest.image_status != "ACTIVE":
            raise ManifestUnknown(
                f"manifest {reference} of repository {repository.name} is "
                f"{manifest.image_status.lower()}: restore it to pull it"
            )
        if accept is not None and not negotiate(manifest.media_type, accept):
            raise ManifestUnknown(
                f"manifest {reference} is a {manifest.media_type}, which the Accept header excludes"
            )
        return manifest

    def with_pull_time(self, manifest: Manifest) -> Manifest:
        """The manifest with the last pull this process noted, when that is later than the
        stored one (pull times are written in batches)."""
        noted = self.pull_times.latest(manifest.id)
        if noted is not None and noted > (manifest.last_pulled_at or 0.0):
            return dataclasses.replace(manifest, last_pulled_at=noted)
        return manifest

    async def record_pull(
        self, manifest: Manifest, principal: Principal | None = None, registry_id: str | None = None
    ) -> None:
        """A pull of the manifest: its `lastRecordedPullTime` moves, in the next batch, unless
        the principal is a pull-time exclusion of the registry."""
        await self.pull_times.record(manifest.id, manifest.last_pulled_at, principal, registry_id)

    async def _resolve(self, tx: Transaction, repository: Repository, reference: str) -> Manifest:
        if is_digest(reference):
            digest = Digest.parse(reference)
            manifest = await tx.manifests.get_manifest(repository.id, str(digest))
        else:
            manifest = await tx.manifests.get_tagged_manifest(
                repository.id, validate_tag(reference)
            )
        if manifest is None:
            raise ManifestUnknown(f"manifest {reference} is not in repository {repository.name}")
        return manifest

    async def delete_manifest(self, repository: Repository, reference: str) -> None:
        """By digest: the manifest and every tag on it. By tag: only the tag."""
        async with self._store.write(changes=Changes.CONTENT) as tx:
            if is_digest(reference):
                manifest = await tx.manifests.get_manifest(
                    repository.id, str(Digest.parse(reference))
                )
                if manifest is None:
                    raise ManifestUnknown(
                        f"manifest {reference} is not in repository {repository.name}"
                    )
                tags = (await tx.manifests.tags_by_manifest([manifest.id])).get(manifest.id, [])
                await tx.manifests.delete_manifest(manifest.id)
                removed = removed_images(manifest, sorted(tags))
            else:
                tag = validate_tag(reference)
                manifest = await tx.manifests.get_tagged_manifest(repository.id, tag)
                if manifest is None or not await tx.manifests.delete_tag(repository.id, tag):
                    raise ManifestUnknown(f"tag {reference} is not in repository {repository.name}")
                removed = [(manifest, tag)]
            deleted = image_actions(DELETE, repository, self.region, removed, self._clock())
            await tx.outbox.append_events(deleted)

    async def tags(
        self, repository: Repository, *, after: str | None, limit: int | None
    ) -> list[str]:
        async with self._store.read() as tx:
            return await tx.manifests.list_tags(repository.id, after=after, limit=limit)

    async def referrers(
        self, repository: Repository, subject_text: str, artifact_type: str | None
    ) -> list[Manifest]:
        """The subject's referrers that can be pulled (archived ones are left out)."""
        subject = Digest.parse(subject_text)
        async with self._store.read() as tx:
            found = await tx.manifests.referrers(repository.id, str(subject), artifact_type)
        return [m for m in found if m.image_status == "ACTIVE"]
