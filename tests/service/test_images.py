"""ECR's image and layer operations through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cargohold.domain.digest import Digest
from cargohold.domain.errors import (
    ImageAlreadyExists,
    ImageDigestDoesNotMatch,
    ImageNotFound,
    ImageTagAlreadyExists,
    InvalidParameter,
    LayersNotFound,
    NameUnknown,
    ReferencedImagesNotFound,
)
from cargohold.domain.manifest import DOCKER_MANIFEST, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.image_ids import ImageId
from cargohold.service.images import ImageService
from cargohold.service.tokens import decode_token, encode_token
from cargohold.service.uploads import UploadService
from support.pushes import PausedPush

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]

ACCOUNT = "123456789012"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def images(content: ContentService, store: MetadataStore) -> ImageService:
    return ImageService(content, store)


async def push_blob(uploads: UploadService, repo: Repository, data: bytes) -> dict[str, Any]:
    await uploads.monolithic(repo, sha(data), once(data), len(data))
    return {"digest": sha(data), "size": len(data)}


async def image(
    uploads: UploadService, repo: Repository, seed: str, **extra: Any
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """An OCI image manifest (as text) whose config and layer are in `repo`."""
    config = await push_blob(uploads, repo, json.dumps({"seed": seed}).encode())
    layer = await push_blob(uploads, repo, f"layer {seed}".encode() * 10)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, **config},
        "layers": [{"mediaType": LAYER, **layer}],
        **extra,
    }
    return json.dumps(document), config, layer


def index_text(*children: str) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": sha(c.encode()), "size": len(c.encode())}
                for c in children
            ],
        }
    )


async def put(images: ImageService, repo: Repository, text: str, tag: str | None = None) -> str:
    manifest = await images.put_image(repo, text, tag=tag)
    return manifest.digest


# -- PutImage -------------------------------------------------------------------------------


async def test_put_image_stores_the_exact_manifest_and_tags_it(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    text, _, _ = await image(uploads, repo, "a")
    manifest = await images.put_image(repo, text, tag="v1")
    assert manifest.digest == sha(text.encode())
    assert manifest.content == text.encode()
    assert manifest.media_type == OCI_MANIFEST
    listed = await images.list_images(repo)
    assert listed.items == [ImageId(manifest.digest, "v1")]


async def test_put_image_same_manifest_and_tag_is_image_already_exists(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    text, _, _ = await image(uploads, repo, "a")
    digest = await put(images, repo, text, "v1")
    with pytest.raises(ImageAlreadyExists) as caught:
        await images.put_image(repo, text, tag="v1")
    assert caught.value.message == (
        f"Image with digest '{digest}' and tag 'v1' already exists in the repository with name "
        f"'team/app' in registry with id '{ACCOUNT}'"
    )
    # A new tag for the same manifest is a change, and so is an untagged push of a new one.
    await images.put_image(repo, text, tag="v2")
    with pytest.raises(ImageAlreadyExists):
        await images.put_image(repo, text)


async def test_put_image_immutable_tag_is_image_tag_already_exists(
    images: ImageService, uploads: UploadService, store: MetadataStore, repo: Repository
) -> None:
    async with store.write() as tx:
        await tx.repositories.update_repository(repo.id, tag_mutability="IMMUTABLE")
    immutable = await images.repository("team/app")
    first, _, _ = await image(uploads, repo, "a")
    second, _, _ = await image(uploads, repo, "b")
    await put(images, immutable, first, "v1")
    with pytest.raises(ImageTagAlreadyExists) as caught:
        await images.put_image(immutable, second, tag="v1")
    assert "'v1' already exists in the 'team/app' repository" in caught.value.message


async def test_put_image_names_every_missing_layer(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    config = await push_blob(uploads, repo, b"{}")
    missing = [{"digest": sha(b"x"), "size": 1}, {"digest": sha(b"y"), "size": 1}]
    text = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": CONFIG, **config},
            "layers": [{"mediaType": LAYER, **m} for m in missing],
        }
    )
    with pytest.raises(LayersNotFound) as caught:
        await images.put_image(repo, text, tag="v1")
    assert caught.value.message == (
        f"Layers with digests '[{sha(b'x')}, {sha(b'y')}]' required for pushing image into "
        f"repository with name 'team/app' in the registry with id '{ACCOUNT}' do not exist"
    )


async def test_put_image_index_with_missing_children_is_referenced_images_not_found(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    present, _, _ = await image(uploads, repo, "a")
    await put(images, repo, present)
    absent, _, _ = await image(uploads, repo, "b")
    with pytest.raises(ReferencedImagesNotFound) as caught:
        await images.put_image(repo, index_text(present, absent), tag="multi")
    assert caught.value.message.startswith(f"Images with digests '[{sha(absent.encode())}]'")


async def test_put_image_digest_must_match(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    text, _, _ = await image(uploads, repo, "a")
    wrong = sha(b"something else")
    with pytest.raises(ImageDigestDoesNotMatch) as caught:
        await images.put_image(repo, text, tag="v1", digest=wrong)
    assert caught.value.message == (
        f"The image with digest '{wrong}' in repository 'team/app' and registry ID "
        f"'{ACCOUNT}' does not match the image digest that Amazon ECR has calculated."
    )
    manifest = await images.put_image(repo, text, tag="v1", digest=sha(text.encode()))
    assert manifest.digest == sha(text.encode())


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"schemaVersion": 2, "config": {}, "layers": []}),  # no mediaType anywhere
        json.dumps({"schemaVersion": 1, "mediaType": OCI_MANIFEST}),
    ],
)
async def test_put_image_invalid_manifest_is_invalid_parameter(
    images: ImageService, repo: Repository, text: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        await images.put_image(repo, text, tag="v1")
    assert caught.value.message.startswith("Invalid parameter at 'ImageManifest'")


async def test_put_image_media_type_parameter_covers_a_manifest_without_one(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    text, _, _ = await image(uploads, repo, "a")
    bare = json.loads(text)
    del bare["mediaType"]
    manifest = await images.put_image(repo, json.dumps(bare), media_type=OCI_MANIFEST, tag="v1")
    assert manifest.media_type == OCI_MANIFEST


async def test_repository_in_an_unknown_registry_is_repository_not_found(
    images: ImageService, repo: Repository
) -> None:
    with pytest.raises(NameUnknown) as caught:
        await images.repository("team/app", "999999999999")
    assert "registry with id '999999999999'" in caught.value.message


# -- ListImages / DescribeImages ------------------------------------------------------------


async def three_images(images: ImageService, uploads: UploadService, repo: Repository) -> list[str]:
    a, _, _ = await image(uploads, repo, "a")
    b, _, _ = await image(uploads, repo, "b")
    c, _, _ = await image(uploads, repo, "c")
    digests = [await put(images, repo, a, "a1")]
    await images.put_image(repo, a, tag="a2")
    digests.append(await put(images, repo, b))
    digests.append(await put(images, repo, c, "c1"))
    return digests


async def test_list_images_one_id_per_tag_untagged_by_digest(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    a, b, c = await three_images(images, uploads, repo)
    listed = await images.list_images(repo)
    assert listed.items == [ImageId(a, "a1"), ImageId(a, "a2"), ImageId(b), ImageId(c, "c1")]
    assert listed.next_token is None
    tagged = await images.list_images(repo, tag_status="TAGGED")
    assert [i.digest for i in tagged.items] == [a, a, c]
    untagged = await images.list_images(repo, tag_status="UNTAGGED")
    assert untagged.items == [ImageId(b)]
    assert (await images.list_images(repo, image_status="ARCHIVED")).items == []


async def test_list_images_pages_through_every_id_once(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    await three_images(images, uploads, repo)
    everything = (await images.list_images(repo)).items
    for size in (1, 2, 3):
        seen: list[ImageId] = []
        token = None
        while True:
            page = await images.list_images(repo, max_results=size, next_token=token)
            assert len(page.items) <= size
            seen += page.items
            token = page.next_token
            if token is None:
                break
        assert seen == everything


async def test_a_token_of_another_call_or_garbage_is_invalid_parameter(
    images: ImageService, uploads: UploadService, repo: Repository, content: ContentService
) -> None:
    await three_images(images, uploads, repo)
    token = (await images.describe_images(repo, max_results=1)).next_token
    assert token is not None
    other = await content.repository_for_push("team/other")
    expected = "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'"
    for call in (
        images.list_images(repo, next_token=token),
        images.describe_images(other, next_token=token),
        images.list_images(repo, next_token="%%%not-base64"),
        images.list_images(repo, next_token=encode_token("ListImages", repo.id, ["x"])),
    ):
        with pytest.raises(InvalidParameter) as caught:
            await call
        assert caught.value.message == expected
    assert decode_token(token, "DescribeImages", repo.id)


async def test_describe_images_details(
    images: ImageService,
    uploads: UploadService,
    content: ContentService,
    repo: Repository,
    now: list[float],
) -> None:
    text, _, layer = await image(uploads, repo, "a")
    digest = await put(images, repo, text, "v1")
    await images.put_image(repo, text, tag="latest")
    [detail] = (await images.describe_images(repo)).items
    assert detail.manifest.digest == digest
    assert detail.tags == ("latest", "v1")
    assert detail.manifest.image_size == layer["size"]
    assert detail.manifest.pushed_at == now[0]
    assert detail.manifest.last_pulled_at is None
    assert detail.manifest.media_type == OCI_MANIFEST
    assert detail.artifact_media_type == CONFIG
    now[0] += 3600
    await images.batch_get_image(repo, [ImageId(tag="v1")])
    [pulled] = (await images.describe_images(repo, [ImageId(tag="v1")])).items
    assert pulled.manifest.last_pulled_at == now[0]


async def test_describe_images_listed_ids_and_filters(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    a, b, c = await three_images(images, uploads, repo)
    listed = await images.describe_images(repo, [ImageId(tag="c1"), ImageId(b), ImageId(a, "a2")])
    assert [d.manifest.digest for d in listed.items] == [c, b, a]
    untagged = await images.describe_images(repo, tag_status="UNTAGGED")
    assert [d.manifest.digest for d in untagged.items] == [b]
    paged = await images.describe_images(repo, max_results=2)
    assert [d.manifest.digest for d in paged.items] == [a, b]
    rest = await images.describe_images(repo, max_results=2, next_token=paged.next_token)
    assert [d.manifest.digest for d in rest.items] == [c]
    assert rest.next_token is None


async def test_describe_images_missing_id_is_image_not_found(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    await three_images(images, uploads, repo)
    with pytest.raises(ImageNotFound) as caught:
        await images.describe_images(repo, [ImageId(tag="a1"), ImageId(tag="nope")])
    assert caught.value.message == (
        "The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the "
        f"repository with name 'team/app' in the registry with id '{ACCOUNT}'"
    )
    with pytest.raises(InvalidParameter):
        await images.describe_images(repo, [ImageId(tag="a1")], max_results=5)


# -- BatchGetImage --------------------------------------------------------------------------


async def test_batch_get_image_by_tag_and_digest_with_failures(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    a, b, c = await three_images(images, uploads, repo)
    result = await images.batch_get_image(
        repo,
        [
            ImageId(tag="a1"),
            ImageId(b),
            ImageId(c, "c1"),
            ImageId(tag="nope"),
            ImageId(),
            ImageId("sha256:zz"),
            ImageId(tag="-bad"),
            ImageId(a, "c1"),
            ImageId(sha(b"absent")),
        ],
    )
    assert [(i.image_id.digest, i.image_id.tag) for i in result.items] == [
        (a, "a1"),
        (b, None),
        (c, "c1"),
    ]
    assert result.items[0].manifest.content.startswith(b"{")
    assert [(f.image_id, f.code) for f in result.failures] == [
        (ImageId(tag="nope"), "ImageNotFound"),
        (ImageId(), "MissingDigestAndTag"),
        (ImageId("sha256:zz"), "InvalidImageDigest"),
        (ImageId(tag="-bad"), "InvalidImageTag"),
        (ImageId(a, "c1"), "ImageTagDoesNotMatchDigest"),
        (ImageId(sha(b"absent")), "ImageNotFound"),
    ]
    reasons = {f.code: f.reason for f in result.failures}
    assert reasons["ImageNotFound"] == "Requested image not found"
    assert reasons["MissingDigestAndTag"] == (
        "Invalid request parameters: both tag and digest cannot be null"
    )


async def test_batch_get_image_refuses_media_types_not_accepted(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    text, _, _ = await image(uploads, repo, "a")
    await put(images, repo, text, "v1")
    refused = await images.batch_get_image(repo, [ImageId(tag="v1")], [DOCKER_MANIFEST])
    assert refused.items == []
    assert [f.code for f in refused.failures] == ["ImageNotFound"]
    assert OCI_MANIFEST in refused.failures[0].reason
    accepted = await images.batch_get_image(
        repo, [ImageId(tag="v1")], [DOCKER_MANIFEST, OCI_MANIFEST]
    )
    assert len(accepted.items) == 1 and accepted.failures == []


# -- BatchDeleteImage -----------------------------------------------------------------------


async def test_delete_by_tag_removes_the_tag_and_the_image_with_its_last_tag(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    a, b, c = await three_images(images, uploads, repo)
    result = await images.batch_delete_image(repo, [ImageId(tag="a1")])
    assert result.items == [ImageId(a, "a1")] and result.failures == []
    assert [d.manifest.digest for d in (await images.describe_images(repo)).items] == [a, b, c]
    result = await images.batch_delete_image(repo, [ImageId(tag="a2")])
    assert result.items == [ImageId(a, "a2")]
    # The last tag went, and the image with it.
    assert [d.manifest.digest for d in (await images.describe_images(repo)).items] == [b, c]


async def test_delete_by_digest_removes_the_image_and_all_its_tags(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    a, b, _ = await three_images(images, uploads, repo)
    result = await images.batch_delete_image(repo, [ImageId(a), ImageId(b), ImageId(a)])
    assert result.items == [ImageId(a, "a1"), ImageId(a, "a2"), ImageId(b)]
    assert [(f.image_id, f.code) for f in result.failures] == [(ImageId(a), "ImageNotFound")]
    assert {i.tag for i in (await images.list_images(repo)).items} == {"c1"}


async def test_delete_failures_tag_digest_mismatch_and_invalid_ids(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    a, _, c = await three_images(images, uploads, repo)
    result = await images.batch_delete_image(
        repo, [ImageId(a, "c1"), ImageId(), ImageId("md5:00"), ImageId(tag="nope")]
    )
    assert result.items == []
    assert [f.code for f in result.failures] == [
        "ImageTagDoesNotMatchDigest",
        "MissingDigestAndTag",
        "InvalidImageDigest",
        "ImageNotFound",
    ]
    # Tag and digest that agree delete the image.
    result = await images.batch_delete_image(repo, [ImageId(c, "c1")])
    assert result.items == [ImageId(c, "c1")]


async def test_a_child_of_an_index_is_not_deleted(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    child, _, _ = await image(uploads, repo, "child")
    child_digest = await put(images, repo, child, "child-tag")
    index_digest = await put(images, repo, index_text(child), "multi")
    for image_id in (ImageId(child_digest), ImageId(tag="child-tag")):
        result = await images.batch_delete_image(repo, [image_id])
        assert result.items == []
        [failure] = result.failures
        assert failure.code == "ImageReferencedByManifestList"
        assert failure.reason == (f"Requested image referenced by manifest list: [{index_digest}]")
    # Deleting the index first frees the child.
    await images.batch_delete_image(repo, [ImageId(tag="multi")])
    result = await images.batch_delete_image(repo, [ImageId(child_digest)])
    assert result.items == [ImageId(child_digest, "child-tag")]


async def test_a_child_of_an_index_pushed_meanwhile_is_not_deleted(
    images: ImageService, uploads: UploadService, repo: Repository, content: ContentService
) -> None:
    """A delete that comes while an index listing the image is being pushed waits for the
    push, then refuses: the index never points at a deleted child."""
    child, _, _ = await image(uploads, repo, "raced")
    child_digest = await put(images, repo, child)
    hook = PausedPush()
    content.push_hook = hook  # type: ignore[assignment]
    pushing = asyncio.create_task(put(images, repo, index_text(child), "multi"))
    await hook.inside.wait()
    deleting = asyncio.create_task(images.batch_delete_image(repo, [ImageId(child_digest)]))
    await asyncio.sleep(0.5)
    hook.release.set()
    index_digest = await pushing
    result = await deleting
    assert result.items == []
    assert [(f.code, f.reason) for f in result.failures] == [
        (
            "ImageReferencedByManifestList",
            f"Requested image referenced by manifest list: [{index_digest}]",
        )
    ]


async def test_deleting_an_index_and_its_child_while_the_index_is_pushed_again(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    """BatchDeleteImage naming an index and its child, racing a push of that index: the
    delete locks its images in one order (the push's), so one waits for the other and
    neither fails with a database error (a deadlock, on PostgreSQL)."""
    child_text, _, _ = await image(uploads, repo, "contended")
    index = index_text(child_text)
    for round_ in range(12):
        child = await put(images, repo, child_text)
        digest = await put(images, repo, index, f"r{round_}")
        pushing = put(images, repo, index, f"again{round_}")
        deleting = images.batch_delete_image(repo, [ImageId(digest), ImageId(child)])
        pushed, deleted = await asyncio.gather(pushing, deleting, return_exceptions=True)
        assert not isinstance(deleted, BaseException), deleted
        assert pushed == digest or isinstance(pushed, ReferencedImagesNotFound), pushed
        await images.batch_delete_image(repo, [ImageId(digest)])


# -- ListImageReferrers ---------------------------------------------------------------------


async def test_list_referrers_filters_and_pages(
    images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    subject_text, _, _ = await image(uploads, repo, "subject")
    subject = await put(images, repo, subject_text, "v1")
    subject_descriptor = {
        "mediaType": OCI_MANIFEST,
        "digest": subject,
        "size": len(subject_text.encode()),
    }
    empty = await push_blob(uploads, repo, b"{}")
    referrers = []
    for n, kind in enumerate(
        ["application/vnd.sig", "application/vnd.sbom", "application/vnd.sig"]
    ):
        layer = await push_blob(uploads, repo, f"artifact {n}".encode())
        text = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": kind,
                "config": {"mediaType": OCI_EMPTY, **empty},
                "layers": [{"mediaType": "application/octet-stream", **layer}],
                "subject": subject_descriptor,
                "annotations": {"n": str(n)},
            }
        )
        referrers.append(await put(images, repo, text))
    everything = await images.list_referrers(repo, subject)
    assert [m.digest for m in everything.items] == sorted(referrers)
    sigs = await images.list_referrers(repo, subject, artifact_types=["application/vnd.sig"])
    assert {m.artifact_type for m in sigs.items} == {"application/vnd.sig"}
    assert len(sigs.items) == 2
    first = await images.list_referrers(repo, subject, max_results=2)
    assert first.next_token is not None
    rest = await images.list_referrers(repo, subject, max_results=2, next_token=first.next_token)
    assert [m.digest for m in first.items + rest.items] == sorted(referrers)
    assert rest.next_token is None
    assert (await images.list_referrers(repo, subject, artifact_status="ARCHIVED")).items == []
    assert (await images.list_referrers(repo, sha(b"no such subject"))).items == []
    with pytest.raises(InvalidParameter):
        await images.list_referrers(repo, "sha256:nothex")
    assert Digest.parse(subject)
