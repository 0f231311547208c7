"""ECR's image operations: ListImages, DescribeImages, BatchGetImage, BatchDeleteImage, PutImage
and ListImageReferrers (the layer operations are in service/layers.py).

Everything here runs over the machinery `/v2/` uses: manifests go through
`ContentService.put_manifest`, so the two fronts cannot disagree about what a repository holds.
This module adds what ECR defines on top: batch semantics with per-item failures
(`failureCode`/`failureReason`, from resolving image ids as service/image_ids.py does),
"deleting an image's last tag deletes the image", a child of an index that cannot be deleted,
and opaque `nextToken` pagination.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from cargohold.domain import jsondoc
from cargohold.domain.digest import Digest
from cargohold.domain.ecrevents import DELETE, FAILURE
from cargohold.domain.errors import (
    DigestInvalid,
    ImageAlreadyExists,
    ImageDigestDoesNotMatch,
    ImageNotFound,
    ImageTagAlreadyExists,
    InvalidParameter,
    LayersNotFound,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestReferencedUnknown,
    ReferencedImagesNotFound,
    SizeInvalid,
    TagInvalid,
)
from cargohold.domain.manifest import parse_manifest
from cargohold.domain.names import validate_tag
from cargohold.domain.principal import Principal
from cargohold.domain.records import Manifest, Repository
from cargohold.ports import Changes, Metadata
from cargohold.service.content import ContentService
from cargohold.service.events import image_actions, removed_images
from cargohold.service.image_ids import (
    DIGEST_PATTERN,
    IMAGE_NOT_FOUND,
    REFERENCED_BY_MANIFEST_LIST,
    TAG_DOES_NOT_MATCH_DIGEST,
    TAG_PATTERN,
    BatchResult,
    ImageFailure,
    ImageId,
    not_active,
    resolve_image,
    status_filter,
)
from cargohold.service.tokens import decode_token, encode_token, invalid_token

T = TypeVar("T")

#: Page sizes when the caller gives no `maxResults` (ListImages/DescribeImages; referrers).
DEFAULT_PAGE = 100
DEFAULT_REFERRER_PAGE = 50


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class ImageDetail:
    manifest: Manifest
    tags: tuple[str, ...]
    #: The config's media type (`artifactMediaType`); None for an index.
    artifact_media_type: str | None


@dataclass(frozen=True, slots=True)
class FetchedImage:
    image_id: ImageId
    manifest: Manifest


def _page_size(max_results: int | None, default: int) -> int:
    return default if max_results is None else max_results


def _tag_status(tag_status: str | None) -> bool | None:
    return {"TAGGED": True, "UNTAGGED": False}.get(tag_status or "ANY")


def _config_media_type(manifest: Manifest) -> str | None:
    try:
        document = json.loads(manifest.content)
    except (ValueError, UnicodeDecodeError):
        return None
    config = document.get("config") if isinstance(document, dict) else None
    media_type = config.get("mediaType") if isinstance(config, dict) else None
    return media_type if isinstance(media_type, str) else None


class ImageService:
    def __init__(self, content: ContentService, store: Metadata) -> None:
        self._content = content
        self._store = store

    async def repository(self, name: str, registry_id: str | None = None) -> Repository:
        return await self._content.repository(name, registry_id)

    # -- listings -----------------------------------------------------------------------------

    async def list_images(
        self,
        repository: Repository,
        *,
        tag_status: str | None = None,
        image_status: str | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[ImageId]:
        """One id per tag (digest and tag); untagged images by digest alone."""
        after: tuple[int, str | None] | None = None
        if next_token is not None:
            key = decode_token(next_token, "ListImages", repository.id)
            if len(key) != 2 or not isinstance(key[0], int) or not isinstance(key[1], str | None):
                raise invalid_token()
            after = (key[0], key[1])
        limit = _page_size(max_results, DEFAULT_PAGE)
        async with self._store.read() as tx:
            rows = await tx.manifests.image_id_page(
                repository.id,
                tagged=_tag_status(tag_status),
                after=after,
                limit=limit + 1,
                status=status_filter(image_status),
            )
        token = None
        if len(rows) > limit:
            rows = rows[:limit]
            last_id, _, last_tag = rows[-1]
            token = encode_token("ListImages", repository.id, [last_id, last_tag])
        return Page([ImageId(digest, tag) for _, digest, tag in rows], token)

    async def describe_images(
        self,
        repository: Repository,
        image_ids: Sequence[ImageId] | None = None,
        *,
        tag_status: str | None = None,
        image_status: str | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[ImageDetail]:
        """Details of the listed images (ImageNotFound for any that is missing), or of all."""
        if image_ids:
            if max_results is not None or next_token is not None:
                raise InvalidParameter(
                    "Invalid parameter: maxResults and nextToken cannot be used with imageIds"
                )
            return Page(await self._describe_listed(repository, image_ids))
        after_id: int | None = None
        if next_token is not None:
            key = decode_token(next_token, "DescribeImages", repository.id)
            if len(key) != 1 or not isinstance(key[0], int):
                raise invalid_token()
            after_id = key[0]
        limit = _page_size(max_results, DEFAULT_PAGE)
        async with self._store.read() as tx:
            found = await tx.manifests.manifest_page(
                repository.id,
                tagged=_tag_status(tag_status),
                after_id=after_id,
                limit=limit + 1,
                status=status_filter(image_status),
            )
            token = None
            if len(found) > limit:
                found = found[:limit]
                token = encode_token("DescribeImages", repository.id, [found[-1].id])
            tags = await tx.manifests.tags_by_manifest(m.id for m in found)
        return Page([self._detail(m, tags.get(m.id, [])) for m in found], token)

    async def _describe_listed(
        self, repository: Repository, image_ids: Sequence[ImageId]
    ) -> list[ImageDetail]:
        found: dict[int, Manifest] = {}
        async with self._store.read() as tx:
            for image_id in image_ids:
                resolved = await resolve_image(tx, repository, image_id)
                if isinstance(resolved, ImageFailure):
                    if resolved.code in (IMAGE_NOT_FOUND, TAG_DOES_NOT_MATCH_DIGEST):
                        raise ImageNotFound(self._not_found_message(repository, image_id))
                    raise InvalidParameter(resolved.reason)
                found.setdefault(resolved.id, resolved)
            tags = await tx.manifests.tags_by_manifest(found)
        return [self._detail(m, tags.get(m.id, [])) for m in found.values()]

    def _detail(self, manifest: Manifest, tags: list[str]) -> ImageDetail:
        manifest = self._content.with_pull_time(manifest)
        return ImageDetail(manifest, tuple(tags), _config_media_type(manifest))

    @staticmethod
    def _not_found_message(repository: Repository, image_id: ImageId) -> str:
        return (
            f"The image with imageId {image_id.describe()} does not exist within the repository "
            f"with name '{repository.name}' in the registry with id '{repository.registry_id}'"
        )

    # -- BatchGetImage ------------------------------------------------------------------------

    async def batch_get_image(
        self,
        repository: Repository,
        image_ids: Sequence[ImageId],
        accepted_media_types: Sequence[str] | None = None,
        principal: Principal | None = None,
    ) -> BatchResult[FetchedImage]:
        """The manifests asked for, each pull recorded as a `/v2/` GET records it."""
        accepted = {t.strip().lower() for t in accepted_media_types or ()}
        result: BatchResult[FetchedImage] = BatchResult()
        seen: set[ImageId] = set()
        async with self._store.read() as tx:
            for image_id in image_ids:
                if image_id in seen:
                    continue
                seen.add(image_id)
                resolved = await resolve_image(tx, repository, image_id)
                if isinstance(resolved, ImageFailure):
                    result.failures.append(resolved)
                elif resolved.image_status != "ACTIVE":
                    result.failures.append(not_active(image_id, resolved.image_status))
                elif accepted and resolved.media_type not in accepted:
                    result.failures.append(
                        ImageFailure(
                            image_id,
                            IMAGE_NOT_FOUND,
                            f"Requested image's media type {resolved.media_type} is not among "
                            "the acceptedMediaTypes",
                        )
                    )
                else:
                    reported = ImageId(resolved.digest, image_id.tag)
                    result.items.append(FetchedImage(reported, resolved))
        for fetched in result.items:
            await self._content.record_pull(fetched.manifest, principal, repository.registry_id)
        return result

    # -- BatchDeleteImage ---------------------------------------------------------------------

    async def batch_delete_image(
        self, repository: Repository, image_ids: Sequence[ImageId]
    ) -> BatchResult[ImageId]:
        """By digest: the image and all its tags. By tag: the tag, and the image with it when
        that was its last tag. A child of an index in the repository is never deleted."""
        result: BatchResult[ImageId] = BatchResult()
        removed: list[tuple[Manifest, str | None]] = []
        refused: list[tuple[Manifest, str | None]] = []
        async with self._store.write(changes=Changes.CONTENT) as tx:
            # Every image named is held first, in id order (a push's order: an index's
            # children were stored before it), so a push of an index racing the delete of it
            # and its children waits or is waited for, and never deadlocks with it.
            named = [await resolve_image(tx, repository, i) for i in image_ids]
            held = {r.id for r in named if not isinstance(r, ImageFailure)}
            await tx.lifecycle.hold_for_actions(repository.id, held)
            for image_id in image_ids:
                resolved = await resolve_image(tx, repository, image_id)
                if isinstance(resolved, ImageFailure):
                    result.failures.append(resolved)
                    continue
                tags = (await tx.manifests.tags_by_manifest([resolved.id])).get(resolved.id, [])
                untag_only = not image_id.digest and len(tags) > 1
                if untag_only:
                    assert image_id.tag is not None
                    await tx.manifests.delete_tag(repository.id, image_id.tag)
                    removed.append((resolved, image_id.tag))
                    continue
                # The row held first (waiting for a push of an index that holds it), the
                # parents read after: an index committed meanwhile is seen.
                if resolved.id not in held:  # a tag moved to it since
                    await tx.lifecycle.hold_for_actions(repository.id, [resolved.id])
                parents = await tx.manifests.manifest_parents(repository.id, resolved.digest)
                if parents:
                    refused.append((resolved, image_id.tag))
                    result.failures.append(
                        ImageFailure(
                            image_id,
                            REFERENCED_BY_MANIFEST_LIST,
                            f"Requested image referenced by manifest list: [{', '.join(parents)}]",
                        )
                    )
                    continue
                await tx.manifests.delete_manifest(resolved.id)
                by_tag = [(resolved, image_id.tag)]
                removed.extend(removed_images(resolved, tags) if image_id.digest else by_tag)
            region, now = self._content.region, self._content.now()
            events = image_actions(DELETE, repository, region, removed, now)
            events += image_actions(DELETE, repository, region, refused, now, result=FAILURE)
            await tx.outbox.append_events(events)
        result.items.extend(ImageId(manifest.digest, tag) for manifest, tag in removed)
        return result

    # -- PutImage -----------------------------------------------------------------------------

    async def put_image(
        self,
        repository: Repository,
        manifest_text: str,
        *,
        media_type: str | None = None,
        tag: str | None = None,
        digest: str | None = None,
    ) -> Manifest:
        raw = manifest_text.encode("utf-8")
        self._require_media_type(raw, media_type)
        if tag is not None:
            try:
                validate_tag(tag)
            except TagInvalid:
                raise InvalidParameter(
                    f"Invalid parameter at 'imageTag' failed to satisfy constraint: "
                    f"'must satisfy regular expression {TAG_PATTERN}'"
                ) from None
        actual = Digest.of(raw)
        if digest is not None:
            try:
                expected = Digest.parse(digest)
            except DigestInvalid:
                raise InvalidParameter(
                    "Invalid parameter at 'imageDigest' failed to satisfy constraint: "
                    f"'must satisfy regular expression {DIGEST_PATTERN}'"
                ) from None
            if Digest.of(raw, expected.algorithm) != expected:
                raise ImageDigestDoesNotMatch(
                    f"The image with digest '{expected}' in repository '{repository.name}' and "
                    f"registry ID '{repository.registry_id}' does not match the image digest "
                    "that Amazon ECR has calculated."
                )
        await self._refuse_unchanged(repository, actual, tag)
        try:
            pushed = await self._content.put_manifest(
                repository, tag if tag is not None else str(actual), raw, media_type
            )
        except ImageTagAlreadyExists:
            raise
        except ManifestBlobUnknown as exc:
            raise await self._layers_not_found(repository, raw, media_type, exc) from None
        except ManifestReferencedUnknown as exc:
            raise await self._images_not_found(repository, raw, media_type, exc) from None
        except (ManifestInvalid, SizeInvalid, TagInvalid, DigestInvalid) as exc:
            raise InvalidParameter(
                f"Invalid parameter at 'ImageManifest' failed to satisfy constraint: "
                f"'{exc.message}'"
            ) from None
        return pushed.manifest

    @staticmethod
    def _require_media_type(raw: bytes, media_type: str | None) -> None:
        """AWS: a manifest without `mediaType` needs `imageManifestMediaType`."""
        try:
            document = jsondoc.loads(raw)
        except ValueError:
            document = None
        if not isinstance(document, dict) or (
            media_type is None and not isinstance(document.get("mediaType"), str)
        ):
            raise InvalidParameter(
                "Invalid parameter at 'ImageManifest' failed to satisfy constraint: "
                "'Invalid JSON syntax'"
            )

    async def _refuse_unchanged(
        self, repository: Repository, digest: Digest, tag: str | None
    ) -> None:
        async with self._store.read() as tx:
            existing = await tx.manifests.get_manifest(repository.id, str(digest))
            if existing is None:
                return
            if tag is not None and await tx.manifests.tag_target(repository.id, tag) != existing.id:
                return
        tagged = f" and tag '{tag}'" if tag is not None else ""
        raise ImageAlreadyExists(
            f"Image with digest '{digest}'{tagged} already exists in the repository with name "
            f"'{repository.name}' in registry with id '{repository.registry_id}'"
        )

    def _required_message(self, kind: str, repository: Repository, digests: list[str]) -> str:
        return (
            f"{kind} with digests '[{', '.join(digests)}]' required for pushing image into "
            f"repository with name '{repository.name}' in the registry with id "
            f"'{repository.registry_id}' do not exist"
        )

    async def _layers_not_found(
        self, repository: Repository, raw: bytes, media_type: str | None, exc: ManifestBlobUnknown
    ) -> LayersNotFound:
        # put_manifest stops at the first missing blob; ECR names all of them.
        wanted = [str(d.digest) for d in parse_manifest(raw, media_type).blob_references]
        async with self._store.read() as tx:
            present = await tx.blobs.linked_blob_sizes(repository.id, wanted)
        missing = list(dict.fromkeys(d for d in wanted if d not in present))
        if not missing and isinstance(exc.detail, dict):
            missing = [str(exc.detail.get("digest"))]
        return LayersNotFound(self._required_message("Layers", repository, missing))

    async def _images_not_found(
        self,
        repository: Repository,
        raw: bytes,
        media_type: str | None,
        exc: ManifestReferencedUnknown,
    ) -> ReferencedImagesNotFound:
        wanted = [str(c.digest) for c in parse_manifest(raw, media_type).children]
        async with self._store.read() as tx:
            present = await tx.manifests.existing_manifests(repository.id, wanted)
        missing = list(dict.fromkeys(d for d in wanted if d not in present))
        if not missing and isinstance(exc.detail, dict):
            missing = [str(exc.detail.get("digest"))]
        return ReferencedImagesNotFound(self._required_message("Images", repository, missing))

    # -- ListImageReferrers -------------------------------------------------------------------

    async def list_referrers(
        self,
        repository: Repository,
        subject_digest: str,
        *,
        artifact_types: Sequence[str] | None = None,
        artifact_status: str | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[Manifest]:
        try:
            subject = Digest.parse(subject_digest)
        except DigestInvalid as exc:
            raise InvalidParameter(
                "Invalid parameter at 'subjectId.imageDigest' failed to satisfy constraint: "
                f"'{exc.message}'"
            ) from None
        after: str | None = None
        if next_token is not None:
            key = decode_token(next_token, "ListImageReferrers", repository.id)
            if len(key) != 2 or key[0] != str(subject) or not isinstance(key[1], str):
                raise invalid_token()
            after = key[1]
        limit = _page_size(max_results, DEFAULT_REFERRER_PAGE)
        async with self._store.read() as tx:
            found = await tx.manifests.referrer_page(
                repository.id,
                str(subject),
                artifact_types=artifact_types,
                after_digest=after,
                limit=limit + 1,
                status=status_filter(artifact_status),
            )
        token = None
        if len(found) > limit:
            found = found[:limit]
            token = encode_token(
                "ListImageReferrers", repository.id, [str(subject), found[-1].digest]
            )
        return Page(found, token)


__all__ = [
    "DEFAULT_PAGE",
    "BatchResult",
    "FetchedImage",
    "ImageDetail",
    "ImageFailure",
    "ImageId",
    "ImageService",
    "Page",
]
