"""Image identifiers: ECR's checks on an `ImageId` and resolving one to a manifest, with the
failure codes and reasons the batch image operations report."""

from __future__ import annotations

import pytest

from cargohold.domain.records import Manifest, Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.image_ids import (
    IMAGE_NOT_FOUND,
    INVALID_IMAGE_DIGEST,
    INVALID_IMAGE_TAG,
    MISSING_DIGEST_AND_TAG,
    TAG_DOES_NOT_MATCH_DIGEST,
    ImageFailure,
    ImageId,
    check_image_id,
    resolve_image,
)

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def test_describe_renders_missing_members_as_null() -> None:
    assert ImageId(A, "v1").describe() == f"{{imageDigest:'{A}', imageTag:'v1'}}"
    assert ImageId(tag="v1").describe() == "{imageDigest:'null', imageTag:'v1'}"


@pytest.mark.parametrize(
    ("image_id", "code", "reason"),
    [
        (ImageId(), MISSING_DIGEST_AND_TAG, "both tag and digest cannot be null"),
        (ImageId("md5:00"), INVALID_IMAGE_DIGEST, "image digest should satisfy the regex"),
        (ImageId(A, "-bad"), INVALID_IMAGE_TAG, "image tag should satisfy the regex"),
    ],
)
def test_ill_formed_ids_fail_before_any_lookup(image_id: ImageId, code: str, reason: str) -> None:
    failure = check_image_id(image_id)
    assert failure is not None
    assert failure.image_id == image_id
    assert failure.code == code
    assert failure.reason.startswith("Invalid request parameters: ")
    assert reason in failure.reason


def test_well_formed_ids_pass() -> None:
    assert check_image_id(ImageId(A)) is None
    assert check_image_id(ImageId(tag="v1")) is None
    assert check_image_id(ImageId(A, "v1")) is None


async def _manifest(store: MetadataStore, repo: Repository, digest: str, tag: str) -> int:
    async with store.write() as tx:
        manifest_id, _ = await tx.manifests.put_manifest(
            repository_id=repo.id,
            digest=digest,
            media_type="application/vnd.oci.image.manifest.v1+json",
            artifact_type=None,
            subject_digest=None,
            content=b"{}",
            image_size=0,
            annotations={},
            blob_digests=[],
            child_digests=[],
            now=1.0,
        )
        await tx.manifests.set_tag(repo.id, tag, manifest_id, 1.0)
    return manifest_id


@pytest.mark.anyio
async def test_resolve_by_digest_tag_or_both(store: MetadataStore, repo: Repository) -> None:
    a = await _manifest(store, repo, A, "a1")
    b = await _manifest(store, repo, B, "b1")

    async def resolve(image_id: ImageId) -> Manifest | ImageFailure:
        async with store.read() as tx:
            return await resolve_image(tx, repo, image_id)

    for image_id in (ImageId(A), ImageId(tag="a1"), ImageId(A, "a1")):
        found = await resolve(image_id)
        assert isinstance(found, Manifest) and found.id == a
    mismatch = await resolve(ImageId(A, "b1"))
    assert isinstance(mismatch, ImageFailure)
    assert mismatch.code == TAG_DOES_NOT_MATCH_DIGEST
    for missing in (ImageId(tag="nope"), ImageId("sha256:" + "c" * 64), ImageId(B, "nope")):
        failure = await resolve(missing)
        assert isinstance(failure, ImageFailure)
        assert (failure.code, failure.reason) == (IMAGE_NOT_FOUND, "Requested image not found")
    found = await resolve(ImageId(tag="b1"))
    assert isinstance(found, Manifest) and found.id == b
    invalid = await resolve(ImageId())
    assert isinstance(invalid, ImageFailure) and invalid.code == MISSING_DIGEST_AND_TAG
