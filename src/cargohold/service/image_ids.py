"""ECR's image identifiers and the per-item failures of its batch image operations.

An `ImageId` names an image by digest, by tag, or by both; `check_image_id` holds it to ECR's
patterns and `resolve_image` finds the manifest it names in a repository, or the `ImageFailure`
(with ECR's `failureCode` and `failureReason`) that BatchGetImage and BatchDeleteImage report
for it instead of failing the whole call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from cargohold.domain.digest import Digest
from cargohold.domain.errors import DigestInvalid, TagInvalid
from cargohold.domain.names import validate_tag
from cargohold.domain.records import Manifest, Repository
from cargohold.ports import Transaction

T = TypeVar("T")

#: The patterns ECR quotes in its failure reasons.
DIGEST_PATTERN = "[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+"
TAG_PATTERN = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"

# Failure codes of ECR's ImageFailure and LayerFailure shapes.
MISSING_DIGEST_AND_TAG = "MissingDigestAndTag"
INVALID_IMAGE_DIGEST = "InvalidImageDigest"
INVALID_IMAGE_TAG = "InvalidImageTag"
IMAGE_NOT_FOUND = "ImageNotFound"
TAG_DOES_NOT_MATCH_DIGEST = "ImageTagDoesNotMatchDigest"
REFERENCED_BY_MANIFEST_LIST = "ImageReferencedByManifestList"


@dataclass(frozen=True, slots=True)
class ImageId:
    """ECR's ImageIdentifier: a digest, a tag, or both."""

    digest: str | None = None
    tag: str | None = None

    def describe(self) -> str:
        """ECR's rendering of an image id inside messages."""
        return f"{{imageDigest:'{self.digest or 'null'}', imageTag:'{self.tag or 'null'}'}}"


@dataclass(frozen=True, slots=True)
class ImageFailure:
    image_id: ImageId
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class BatchResult(Generic[T]):
    items: list[T] = field(default_factory=list)
    failures: list[ImageFailure] = field(default_factory=list)


def check_image_id(image_id: ImageId) -> ImageFailure | None:
    """Why ECR refuses this id before looking it up, or None when it is well formed."""
    if not image_id.digest and not image_id.tag:
        return ImageFailure(
            image_id,
            MISSING_DIGEST_AND_TAG,
            "Invalid request parameters: both tag and digest cannot be null",
        )
    if image_id.digest:
        try:
            Digest.parse(image_id.digest)
        except DigestInvalid:
            return ImageFailure(
                image_id,
                INVALID_IMAGE_DIGEST,
                "Invalid request parameters: image digest should satisfy the regex "
                f"'{DIGEST_PATTERN}'",
            )
    if image_id.tag:
        try:
            validate_tag(image_id.tag)
        except TagInvalid:
            return ImageFailure(
                image_id,
                INVALID_IMAGE_TAG,
                f"Invalid request parameters: image tag should satisfy the regex '{TAG_PATTERN}'",
            )
    return None


async def resolve_image(
    tx: Transaction, repository: Repository, image_id: ImageId
) -> Manifest | ImageFailure:
    """The manifest the id names in the repository, or why there is none."""
    invalid = check_image_id(image_id)
    if invalid is not None:
        return invalid
    by_digest = by_tag = None
    if image_id.digest:
        by_digest = await tx.manifests.get_manifest(
            repository.id, str(Digest.parse(image_id.digest))
        )
    if image_id.tag:
        by_tag = await tx.manifests.get_tagged_manifest(repository.id, image_id.tag)
    manifest = by_digest or by_tag
    if image_id.digest and image_id.tag:
        if by_digest is not None and by_tag is not None and by_digest.id != by_tag.id:
            return ImageFailure(
                image_id,
                TAG_DOES_NOT_MATCH_DIGEST,
                "Invalid request parameters: image tag does not match image digest",
            )
        manifest = by_digest if by_tag is not None else None
    if manifest is None:
        return ImageFailure(image_id, IMAGE_NOT_FOUND, "Requested image not found")
    return manifest


def not_active(image_id: ImageId, status: str) -> ImageFailure:
    """BatchGetImage's failure for an image that is archived or being restored."""
    return ImageFailure(
        image_id,
        IMAGE_NOT_FOUND,
        f"Requested image is {status.lower()} and cannot be pulled until it is restored",
    )


def status_filter(status: str | None) -> str | None:
    """The image status a listing keeps: ACTIVE unless the filter names one, any for ANY."""
    if status == "ANY":
        return None
    return status or "ACTIVE"
