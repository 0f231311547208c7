"""ECR's layer operations: BatchCheckLayerAvailability, GetDownloadUrlForLayer, and the
layer-upload API (InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload).

Parts go through `UploadService`, the machinery `/v2/` blob uploads use, one decoded part per
append; an upload may be started through one front and finished through the other. ECR's own
rules sit on top: a part must start where the upload stands, every part but the last is at least
5 MiB, and completing a layer the repository already holds is an error (after the digest check).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from cargohold.domain.digest import Digest
from cargohold.domain.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    EmptyUpload,
    InvalidLayer,
    InvalidLayerPart,
    InvalidParameter,
    LayerAlreadyExists,
    LayerInaccessible,
    LayerPartTooSmall,
    LayersNotFound,
    ManifestInvalid,
    RangeInvalid,
)
from cargohold.domain.manifest import parse_manifest
from cargohold.domain.records import Repository
from cargohold.ports import Metadata
from cargohold.service.uploads import UploadService

#: What InitiateLayerUpload advertises; every part but the last must be at least MIN_PART_SIZE.
PART_SIZE = 10 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024

_DIGEST_PATTERN = "[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+"

# Failure codes of ECR's LayerFailure shape.
INVALID_LAYER_DIGEST = "InvalidLayerDigest"
MISSING_LAYER_DIGEST = "MissingLayerDigest"


@dataclass(frozen=True, slots=True)
class LayerState:
    digest: str
    available: bool
    size: int | None = None
    media_type: str | None = None


@dataclass(frozen=True, slots=True)
class LayerFailure:
    digest: str
    code: str
    reason: str


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


class LayerService:
    def __init__(self, store: Metadata, uploads: UploadService) -> None:
        self._store = store
        self._uploads = uploads

    # -- availability and downloads -----------------------------------------------------------

    async def check_layers(
        self, repository: Repository, digests: Sequence[str]
    ) -> tuple[list[LayerState], list[LayerFailure]]:
        """BatchCheckLayerAvailability: AVAILABLE (size, media type) or UNAVAILABLE per layer;
        failures only for digests that are empty or malformed."""
        failures: list[LayerFailure] = []
        valid: list[str] = []
        for text in digests:
            if not text:
                failures.append(
                    LayerFailure(text, MISSING_LAYER_DIGEST, "The layer digest is missing")
                )
                continue
            try:
                valid.append(str(Digest.parse(text)))
            except DigestInvalid:
                failures.append(
                    LayerFailure(
                        text,
                        INVALID_LAYER_DIGEST,
                        f"Invalid layer digest: it should satisfy the regex '{_DIGEST_PATTERN}'",
                    )
                )
        async with self._store.read() as tx:
            sizes = await tx.blobs.linked_blob_sizes(repository.id, valid)
            referrers = await tx.manifests.blob_referrers(repository.id, sizes)
            manifests = {m.id: m for m in await tx.manifests.manifests_by_id(referrers.values())}
        media_types: dict[str, str] = {}
        for manifest in manifests.values():
            try:
                parsed = parse_manifest(manifest.content, manifest.media_type)
            except ManifestInvalid:
                continue
            for descriptor in parsed.blob_references:
                media_types.setdefault(str(descriptor.digest), descriptor.media_type)
        layers = [
            LayerState(d, True, sizes[d], media_types.get(d))
            if d in sizes
            else LayerState(d, False)
            for d in dict.fromkeys(valid)
        ]
        return layers, failures

    async def layer_for_download(self, repository: Repository, digest_text: str) -> Digest:
        """The layer GetDownloadUrlForLayer may hand out: held, and part of some image."""
        try:
            digest = Digest.parse(digest_text)
        except DigestInvalid as exc:
            raise InvalidParameter(
                f"Invalid parameter at 'layerDigest' failed to satisfy constraint: '{exc.message}'"
            ) from None
        async with self._store.read() as tx:
            size = await tx.blobs.linked_blob_size(repository.id, str(digest))
            referenced = size is not None and bool(
                await tx.manifests.blob_referrers(repository.id, [str(digest)])
            )
        if size is None:
            raise LayersNotFound(
                f"The layer with digest '{digest}' does not exist in the repository with name "
                f"'{repository.name}' in the registry with id '{repository.registry_id}'"
            )
        if not referenced:
            raise LayerInaccessible(
                "The specified layer is not available because it is not associated with an "
                "image. Unassociated image layers may be cleaned up at any time."
            )
        return digest

    # -- the layer-upload API -----------------------------------------------------------------

    def _upload_not_found(self, repository: Repository, upload_id: str) -> BlobUploadUnknown:
        return BlobUploadUnknown(
            f"The upload with id '{upload_id}' does not exist in the repository with name "
            f"'{repository.name}' in the registry with id '{repository.registry_id}'"
        )

    async def initiate_upload(self, repository: Repository) -> tuple[str, int]:
        upload = await self._uploads.start(repository)
        return upload.id, PART_SIZE

    async def upload_part(
        self, repository: Repository, upload_id: str, first_byte: int, last_byte: int, data: bytes
    ) -> int:
        """Append one part at the upload's offset; the last byte received so far."""
        try:
            upload = await self._uploads.get(repository, upload_id)
        except BlobUploadUnknown:
            raise self._upload_not_found(repository, upload_id) from None
        if first_byte != upload.offset or last_byte != first_byte + len(data) - 1 or not data:
            raise self._invalid_part(repository, upload_id, upload.offset, first_byte, last_byte)
        try:
            advanced = await self._uploads.append(
                repository,
                upload_id,
                _one_chunk(data),
                start=first_byte,
                end=last_byte,
                content_length=len(data),
            )
        except BlobUploadUnknown:
            raise self._upload_not_found(repository, upload_id) from None
        except RangeInvalid as exc:
            raise self._invalid_part(
                repository, upload_id, exc.offset, first_byte, last_byte
            ) from None
        except BlobUploadInvalid:
            # Another part of this upload moved it while this one was written.
            current = await self._uploads.get(repository, upload_id)
            raise self._invalid_part(
                repository, upload_id, current.offset, first_byte, last_byte
            ) from None
        return advanced.offset - 1

    @staticmethod
    def _invalid_part(
        repository: Repository, upload_id: str, offset: int, first: int, last: int
    ) -> InvalidLayerPart:
        error = InvalidLayerPart(
            f"The layer part {first}-{last} of upload '{upload_id}' does not continue the upload, "
            f"which has received bytes 0-{offset - 1}",
            upload_id=upload_id,
            last_valid_byte=offset - 1,
        )
        error.detail = {"registryId": repository.registry_id, "repositoryName": repository.name}
        return error

    async def complete_upload(
        self, repository: Repository, upload_id: str, layer_digests: Sequence[str]
    ) -> Digest:
        try:
            upload = await self._uploads.get(repository, upload_id)
        except BlobUploadUnknown:
            raise self._upload_not_found(repository, upload_id) from None
        if upload.part_count == 0 or upload.offset == 0:
            raise EmptyUpload(
                f"The upload with id '{upload_id}' in the repository with name "
                f"'{repository.name}' in the registry with id '{repository.registry_id}' "
                "has no layer parts"
            )
        if (
            upload.smallest_earlier_part is not None
            and upload.smallest_earlier_part < MIN_PART_SIZE
        ):
            raise LayerPartTooSmall(
                f"A layer part of upload '{upload_id}' is {upload.smallest_earlier_part} bytes; "
                f"every part but the last must be at least {MIN_PART_SIZE} bytes"
            )
        try:
            digest = Digest.parse(layer_digests[0])
        except DigestInvalid as exc:
            raise InvalidParameter(
                f"Invalid parameter at 'layerDigests' failed to satisfy constraint: '{exc.message}'"
            ) from None
        async with self._store.read() as tx:
            held_before = await tx.blobs.linked_blob_size(repository.id, str(digest)) is not None
        try:
            committed = await self._uploads.finish(repository, upload_id, str(digest), None)
        except BlobUploadUnknown:
            raise self._upload_not_found(repository, upload_id) from None
        except DigestInvalid:
            raise InvalidLayer(
                f"The layer digest calculated by Amazon ECR for upload '{upload_id}' does not "
                f"match the digest specified, {digest}"
            ) from None
        if held_before:
            # The bytes were verified first, so the caller knows its digest is right.
            raise LayerAlreadyExists(
                f"The layer with digest '{digest}' already exists in the repository with name "
                f"'{repository.name}' in the registry with id '{repository.registry_id}'"
            )
        return committed.digest
