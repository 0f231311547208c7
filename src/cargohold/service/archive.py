"""The archive storage class: UpdateImageStorageClass, and restoring an image.

An ARCHIVED image is still listed (with the `imageStatus` filter) and described, but never
served: a pull answers 404 (MANIFEST_UNKNOWN), BatchGetImage an ImageNotFound failure. Its
referrers are archived and restored with it. Restoring, by UpdateImageStorageClass to STANDARD
or by pushing the image again, puts it in ACTIVATING and queues an activation job, which makes
it ACTIVE and stamps `lastActivatedAt`.

Blobs stay where they are: there is no separate archive store, so an archived image's layers
cost what they did (and blobs other images share are never moved); activation therefore has no
bytes to bring back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cargohold.domain.errors import (
    ImageNotFound,
    ImageStorageClassUpdateNotSupported,
    InvalidParameter,
)
from cargohold.domain.records import LifecycleManifest, Manifest, Repository
from cargohold.ports import Changes, Metadata, Transaction
from cargohold.service.image_ids import (
    IMAGE_NOT_FOUND,
    TAG_DOES_NOT_MATCH_DIGEST,
    ImageFailure,
    ImageId,
    resolve_image,
)
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.lifecycle_plan import ACTIVATING, ACTIVE, ARCHIVED

#: The job kind that finishes a restore.
ACTIVATE = "activate-images"


async def restore(tx: Transaction, manifest_ids: list[int], now: float) -> None:
    """Put archived images in ACTIVATING and queue their activation (inside `tx`)."""
    if manifest_ids:
        await tx.lifecycle.set_image_status(manifest_ids, ACTIVATING)
        await tx.jobs.enqueue(ACTIVATE, {"manifest_ids": sorted(manifest_ids)}, now)


def _with_referrers(manifests: list[LifecycleManifest], digest: str) -> list[LifecycleManifest]:
    """The manifest of `digest` and every referrer of it, recursively."""
    by_subject: dict[str, list[LifecycleManifest]] = {}
    for manifest in manifests:
        if manifest.subject_digest is not None:
            by_subject.setdefault(manifest.subject_digest, []).append(manifest)
    found = [m for m in manifests if m.digest == digest]
    pending = list(found)
    while pending:
        referrers = by_subject.get(pending.pop().digest, [])
        found += referrers
        pending += referrers
    return found


class ArchiveService:
    def __init__(
        self,
        store: Metadata,
        clock: Callable[[], float],
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._wake = wake

    def register_jobs(self, jobs: JobRunner) -> None:
        """Activations run on `jobs`."""
        jobs.register(ACTIVATE, JobKind(self.activate))

    async def update_storage_class(
        self, repository: Repository, image_id: ImageId, target: str
    ) -> tuple[Manifest, str]:
        """Move the image (and its referrers) towards `target` (STANDARD or ARCHIVE); the
        image and its status afterwards."""
        now = self._clock()
        async with self._store.write(changes=Changes.CONTENT) as tx:
            resolved = await resolve_image(tx, repository, image_id)
            if isinstance(resolved, ImageFailure):
                if resolved.code not in (IMAGE_NOT_FOUND, TAG_DOES_NOT_MATCH_DIGEST):
                    raise InvalidParameter(resolved.reason)
                raise ImageNotFound(
                    f"The image with imageId {image_id.describe()} does not exist within the "
                    f"repository with name '{repository.name}' in the registry with id "
                    f"'{repository.registry_id}'"
                )
            group = _with_referrers(
                await tx.lifecycle.lifecycle_manifests(repository.id), resolved.digest
            )
            status = await self._move(tx, resolved, group, target, now)
        if status == ACTIVATING and self._wake is not None:
            self._wake()
        return resolved, status

    @staticmethod
    async def _move(
        tx: Transaction,
        image: Manifest,
        group: list[LifecycleManifest],
        target: str,
        now: float,
    ) -> str:
        if target == "ARCHIVE":
            if image.image_status == ACTIVATING:
                raise ImageStorageClassUpdateNotSupported(
                    f"The image {image.digest} is being restored and cannot be archived until "
                    "it is ACTIVE"
                )
            if group and group[0].in_index:
                raise ImageStorageClassUpdateNotSupported(
                    f"The image {image.digest} is referenced by a manifest list and cannot be "
                    "archived before it"
                )
            active = [m.id for m in group if m.image_status == ACTIVE]
            if active:
                await tx.lifecycle.set_image_status(active, ARCHIVED, archived_at=now)
            return ARCHIVED
        if image.image_status == ACTIVE:
            return ACTIVE
        await restore(tx, [m.id for m in group if m.image_status == ARCHIVED], now)
        return ACTIVATING

    async def activate(self, payload: Mapping[str, Any]) -> None:
        """The activation job: the images still ACTIVATING become ACTIVE."""
        ids = [int(i) for i in payload["manifest_ids"]]
        async with self._store.write(changes=Changes.CONTENT) as tx:
            found = await tx.manifests.manifests_by_id(ids)
            activating = [m.id for m in found if m.image_status == ACTIVATING]
            if activating:
                await tx.lifecycle.set_image_status(activating, ACTIVE, activated_at=self._clock())
