"""Repositories, blobs, manifests, tags and referrers through the service layer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from cargohold.domain.digest import Digest
from cargohold.domain.errors import (
    BlobUnknown,
    DigestInvalid,
    ImageTagAlreadyExists,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestReferencedUnknown,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
)
from cargohold.domain.manifest import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_MANIFEST_BYTES,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
)
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import (
    PULL_TIME_RESOLUTION,
    ContentService,
    tag_is_immutable,
)
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver

pytestmark = pytest.mark.anyio

CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
ACCOUNT = "123456789012"


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push_blob(uploads: UploadService, repo: Repository, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    await uploads.monolithic(repo, digest, once(data), len(data))
    return {"digest": digest, "size": len(data)}


def manifest_bytes(config: dict[str, Any], *layers: dict[str, Any], **extra: Any) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, **config},
        "layers": [{"mediaType": LAYER, **layer} for layer in layers],
        **extra,
    }
    return json.dumps(document, indent=2).encode()


def index_bytes(*children: bytes, media_type: str = OCI_INDEX, **extra: Any) -> bytes:
    child_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {"mediaType": child_type, "digest": str(Digest.of(c)), "size": len(c)} for c in children
        ],
        **extra,
    }
    return json.dumps(document).encode()


async def image(
    content: ContentService, uploads: UploadService, repo: Repository, seed: str = "a"
) -> bytes:
    config = await push_blob(uploads, repo, f'{{"seed": "{seed}"}}'.encode())
    layer = await push_blob(uploads, repo, f"layer {seed}".encode())
    return manifest_bytes(config, layer)


# -- repositories ----------------------------------------------------------------------------


async def test_repository_names(content: ContentService) -> None:
    for bad in ("UPPER", "../x", "a" * 300, "x"):
        with pytest.raises(NameInvalid):
            await content.repository(bad)
        with pytest.raises(NameInvalid):
            await content.repository_for_push(bad)
    with pytest.raises(NameUnknown):
        await content.repository("nothing/here")


async def test_create_on_push(content: ContentService, store: MetadataStore) -> None:
    created = await content.repository_for_push("new/repo")
    assert (await content.repository("new/repo")) == created
    assert await content.repository_for_push("new/repo") == created
    closed = ContentService(store, content._storage, lambda: 0.0, registry_id=ACCOUNT)
    with pytest.raises(NameUnknown):
        await closed.repository_for_push("not/created")
    assert await closed.repository_for_push("new/repo") == created


@pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True)
async def test_first_pushes_at_once_create_one_repository(content: ContentService) -> None:
    names = [f"raced/repo{i}" for i in range(4)]
    for name in names:  # a few rounds: the first one also races the connection pool's warm-up
        found: list[Repository] = []

        async def push(name: str = name, found: list[Repository] = found) -> None:
            found.append(await content.repository_for_push(name))

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(push)
        assert len(found) == 10 and len({r.id for r in found}) == 1
    assert await content.catalog(after=None, limit=None) == names


async def test_catalog(content: ContentService) -> None:
    for name in ("b", "a/b", "a", "a-b"):
        await content.repository_for_push(name if len(name) > 1 else name * 2)
    assert await content.catalog(after=None, limit=None) == ["a-b", "a/b", "aa", "bb"]
    assert await content.catalog(after="a/b", limit=1) == ["aa"]


# -- blobs -----------------------------------------------------------------------------------


async def test_blob_and_its_boundary(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    blob = await push_blob(uploads, repo, b"content")
    location = await content.blob(repo, blob["digest"])
    assert (str(location.digest), location.size) == (blob["digest"], 7)
    assert location.local_path is not None
    other = await content.repository_for_push("other")
    with pytest.raises(BlobUnknown):
        await content.blob(other, blob["digest"])
    with pytest.raises(DigestInvalid):
        await content.blob(repo, "sha256:nothex")


async def test_delete_blob(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    blob = await push_blob(uploads, repo, b"content")
    await content.delete_blob(repo, blob["digest"])
    with pytest.raises(BlobUnknown):
        await content.blob(repo, blob["digest"])
    with pytest.raises(BlobUnknown):
        await content.delete_blob(repo, blob["digest"])


async def test_mount(content: ContentService, uploads: UploadService, repo: Repository) -> None:
    blob = await push_blob(uploads, repo, b"shared")
    target = await content.repository_for_push("target")
    assert await content.mount_blob(target, blob["digest"], repo) == 6
    assert (await content.blob(target, blob["digest"])).size == 6
    empty = await content.repository_for_push("empty")
    assert await content.mount_blob(target, str(Digest.of(b"absent")), empty) is None
    assert await content.mount_blob(empty, blob["digest"], empty) is None
    with pytest.raises(BlobUnknown):
        await content.blob(empty, blob["digest"])


# -- manifests -------------------------------------------------------------------------------


async def test_put_and_get_by_tag_and_digest(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    raw = await image(content, uploads, repo)
    pushed = await content.put_manifest(repo, "v1", raw, OCI_MANIFEST)
    digest = str(Digest.of(raw))
    assert pushed.created and pushed.manifest.digest == digest
    assert pushed.manifest.content == raw  # exact bytes, whitespace and all
    for reference in ("v1", digest):
        got = await content.manifest(repo, reference)
        assert (got.content, got.media_type, got.digest) == (raw, OCI_MANIFEST, digest)
    again = await content.put_manifest(repo, digest, raw, OCI_MANIFEST)
    assert not again.created and again.manifest.id == pushed.manifest.id


async def test_put_by_sha512_digest(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    raw = await image(content, uploads, repo)
    reference = "sha512:" + hashlib.sha512(raw).hexdigest()
    pushed = await content.put_manifest(repo, reference, raw, OCI_MANIFEST)
    assert pushed.manifest.digest == reference
    assert (await content.manifest(repo, reference)).content == raw
    with pytest.raises(ManifestUnknown):
        await content.manifest(repo, str(Digest.of(raw)))


async def test_manifest_referencing_sha512_blobs(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    layer = b"sha512 layer"
    digest = "sha512:" + hashlib.sha512(layer).hexdigest()
    await uploads.monolithic(repo, digest, once(layer), len(layer))
    config = await push_blob(uploads, repo, b"{}")
    raw = manifest_bytes(config, {"digest": digest, "size": len(layer)})
    assert (await content.put_manifest(repo, "sha512", raw, OCI_MANIFEST)).created


async def test_digest_reference_must_match(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    raw = await image(content, uploads, repo)
    with pytest.raises(DigestInvalid):
        await content.put_manifest(repo, str(Digest.of(raw + b" ")), raw, OCI_MANIFEST)
    with pytest.raises(DigestInvalid):
        await content.put_manifest(repo, "sha256:abc", raw, OCI_MANIFEST)
    with pytest.raises(ManifestUnknown):
        await content.manifest(repo, str(Digest.of(raw)))


async def test_invalid_tags(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    raw = await image(content, uploads, repo)
    for tag in (".x", "-x", "a" * 129):
        with pytest.raises(TagInvalid):
            await content.put_manifest(repo, tag, raw, OCI_MANIFEST)


async def test_missing_blobs_are_refused(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    config = await push_blob(uploads, repo, b"{}")
    missing = {"digest": str(Digest.of(b"never pushed")), "size": 12}
    with pytest.raises(ManifestBlobUnknown) as raised:
        await content.put_manifest(repo, "x", manifest_bytes(config, missing), OCI_MANIFEST)
    assert raised.value.detail == {"digest": missing["digest"]}
    layer = await push_blob(uploads, repo, b"layer")
    with pytest.raises(ManifestBlobUnknown):
        await content.put_manifest(repo, "x", manifest_bytes(missing, layer), OCI_MANIFEST)
    # A blob another repository holds is no use here.
    other = await content.repository_for_push("other")
    foreign = await push_blob(uploads, other, b"elsewhere")
    with pytest.raises(ManifestBlobUnknown):
        await content.put_manifest(repo, "x", manifest_bytes(config, foreign), OCI_MANIFEST)
    with pytest.raises(ManifestUnknown):
        await content.manifest(repo, "x")


async def test_descriptor_size_must_match_the_blob(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    config = await push_blob(uploads, repo, b"{}")
    layer = await push_blob(uploads, repo, b"layer")
    wrong = {**layer, "size": layer["size"] + 1}
    with pytest.raises(ManifestInvalid):
        await content.put_manifest(repo, "x", manifest_bytes(config, wrong), OCI_MANIFEST)


async def test_indexes_need_their_children(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    amd = await image(content, uploads, repo, "amd64")
    arm = await image(content, uploads, repo, "arm64")
    await content.put_manifest(repo, str(Digest.of(amd)), amd, OCI_MANIFEST)
    with pytest.raises(ManifestReferencedUnknown) as raised:
        await content.put_manifest(repo, "multi", index_bytes(amd, arm), OCI_INDEX)
    assert isinstance(raised.value, ManifestUnknown)
    assert raised.value.detail == {"digest": str(Digest.of(arm))}
    await content.put_manifest(repo, str(Digest.of(arm)), arm, OCI_MANIFEST)
    pushed = await content.put_manifest(repo, "multi", index_bytes(amd, arm), OCI_INDEX)
    assert pushed.parsed.is_index
    assert pushed.manifest.image_size == len(amd) + len(arm)


async def test_docker_media_types(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    config = await push_blob(uploads, repo, b'{"docker": true}')
    layer = await push_blob(uploads, repo, b"docker layer")
    docker = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **layer}],
        }
    ).encode()
    pushed = await content.put_manifest(repo, "docker", docker, DOCKER_MANIFEST)
    assert pushed.manifest.media_type == DOCKER_MANIFEST
    listing = index_bytes(docker, media_type=DOCKER_MANIFEST_LIST)
    pushed = await content.put_manifest(repo, "list", listing, DOCKER_MANIFEST_LIST)
    assert pushed.manifest.media_type == DOCKER_MANIFEST_LIST
    got = await content.manifest(repo, "list", accept=[DOCKER_MANIFEST_LIST])
    assert got.content == listing


async def test_accept_negotiation(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    raw = await image(content, uploads, repo)
    await content.put_manifest(repo, "v1", raw, OCI_MANIFEST)
    assert (await content.manifest(repo, "v1", accept=[OCI_MANIFEST])).content == raw
    assert (await content.manifest(repo, "v1", accept=["*/*"])).content == raw
    with pytest.raises(ManifestUnknown):
        await content.manifest(repo, "v1", accept=[DOCKER_MANIFEST])


async def test_oversized_manifest(content: ContentService, repo: Repository) -> None:
    with pytest.raises(SizeInvalid):
        await content.put_manifest(repo, "big", b" " * (MAX_MANIFEST_BYTES + 1), OCI_MANIFEST)


async def test_artifact_with_subject_and_referrers(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    subject_raw = await image(content, uploads, repo)
    subject = str(Digest.of(subject_raw))
    empty = await push_blob(uploads, repo, b"{}")
    sbom = await push_blob(uploads, repo, b"sbom")

    def artifact(artifact_type: str, note: str) -> bytes:
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": {"mediaType": OCI_EMPTY, **empty},
                "layers": [{"mediaType": "text/spdx", **sbom}],
                "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
                "annotations": {"note": note},
            }
        ).encode()

    # The subject need not exist yet (spec: referrers may be pushed first).
    first = await content.put_manifest(
        repo, str(Digest.of(artifact("x/sbom", "1"))), artifact("x/sbom", "1"), OCI_MANIFEST
    )
    assert first.parsed.subject is not None and str(first.parsed.subject.digest) == subject
    await content.put_manifest(repo, "sig", artifact("x/sig", "2"), OCI_MANIFEST)
    await content.put_manifest(repo, "v1", subject_raw, OCI_MANIFEST)
    every = await content.referrers(repo, subject, None)
    assert {m.artifact_type for m in every} == {"x/sbom", "x/sig"}
    assert {m.annotations["note"] for m in every} == {"1", "2"}
    sigs = await content.referrers(repo, subject, "x/sig")
    assert [m.artifact_type for m in sigs] == ["x/sig"]
    assert await content.referrers(repo, str(Digest.of(b"none")), None) == []
    with pytest.raises(DigestInvalid):
        await content.referrers(repo, "not-a-digest", None)


async def test_tags_move_and_list(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    one = await image(content, uploads, repo, "1")
    two = await image(content, uploads, repo, "2")
    await content.put_manifest(repo, "latest", one, OCI_MANIFEST)
    await content.put_manifest(repo, "latest", two, OCI_MANIFEST)
    assert (await content.manifest(repo, "latest")).content == two
    assert (await content.manifest(repo, str(Digest.of(one)))).content == one
    for tag in ("b", "a", "C"):
        await content.put_manifest(repo, tag, one, OCI_MANIFEST)
    assert await content.tags(repo, after=None, limit=None) == ["C", "a", "b", "latest"]
    assert await content.tags(repo, after="a", limit=2) == ["b", "latest"]


async def test_immutable_tags(
    content: ContentService, uploads: UploadService, store: MetadataStore, repo: Repository
) -> None:
    async with store.write() as tx:
        await tx.repositories.update_repository(repo.id, tag_mutability="IMMUTABLE")
    repo = await content.repository(repo.name)
    one = await image(content, uploads, repo, "1")
    two = await image(content, uploads, repo, "2")
    await content.put_manifest(repo, "v1", one, OCI_MANIFEST)
    await content.put_manifest(repo, "v1", one, OCI_MANIFEST)  # the same image again is fine
    with pytest.raises(ImageTagAlreadyExists):
        await content.put_manifest(repo, "v1", two, OCI_MANIFEST)
    assert (await content.manifest(repo, "v1")).content == one


def test_tag_mutability_rules() -> None:
    def repository(mode: str, *patterns: str) -> Repository:
        filters = [{"filter": p, "filterType": "WILDCARD"} for p in patterns]
        return Repository(1, ACCOUNT, "r", 0.0, mode, filters)

    assert not tag_is_immutable(repository("MUTABLE"), "v1")
    assert tag_is_immutable(repository("IMMUTABLE"), "v1")
    assert tag_is_immutable(repository("IMMUTABLE_WITH_EXCLUSION", "dev-*"), "v1")
    assert not tag_is_immutable(repository("IMMUTABLE_WITH_EXCLUSION", "dev-*"), "dev-7")
    assert tag_is_immutable(repository("MUTABLE_WITH_EXCLUSION", "release-*"), "release-1")
    assert not tag_is_immutable(repository("MUTABLE_WITH_EXCLUSION", "release-*"), "latest")


async def test_delete_by_tag_keeps_the_manifest(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    raw = await image(content, uploads, repo)
    await content.put_manifest(repo, "v1", raw, OCI_MANIFEST)
    await content.put_manifest(repo, "v2", raw, OCI_MANIFEST)
    await content.delete_manifest(repo, "v1")
    with pytest.raises(ManifestUnknown):
        await content.manifest(repo, "v1")
    assert (await content.manifest(repo, "v2")).content == raw
    assert (await content.manifest(repo, str(Digest.of(raw)))).content == raw
    with pytest.raises(ManifestUnknown):
        await content.delete_manifest(repo, "v1")


async def test_delete_by_digest_removes_its_tags(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    raw = await image(content, uploads, repo)
    await content.put_manifest(repo, "v1", raw, OCI_MANIFEST)
    await content.put_manifest(repo, "v2", raw, OCI_MANIFEST)
    await content.delete_manifest(repo, str(Digest.of(raw)))
    for reference in ("v1", "v2", str(Digest.of(raw))):
        with pytest.raises(ManifestUnknown):
            await content.manifest(repo, reference)
    assert await content.tags(repo, after=None, limit=None) == []
    with pytest.raises(ManifestUnknown):
        await content.delete_manifest(repo, str(Digest.of(raw)))


async def test_record_pull_is_coarse(
    content: ContentService, uploads: UploadService, repo: Repository, now: list[float]
) -> None:
    raw = await image(content, uploads, repo)
    await content.put_manifest(repo, "v1", raw, OCI_MANIFEST)
    pulled_at = now[0]
    await content.record_pull(await content.manifest(repo, "v1"))
    assert (await content.manifest(repo, "v1")).last_pulled_at == pulled_at
    now[0] += PULL_TIME_RESOLUTION / 2
    await content.record_pull(await content.manifest(repo, "v1"))
    assert (await content.manifest(repo, "v1")).last_pulled_at == pulled_at
    now[0] += PULL_TIME_RESOLUTION
    await content.record_pull(await content.manifest(repo, "v1"))
    assert (await content.manifest(repo, "v1")).last_pulled_at == now[0]


async def test_foreign_layers_need_not_be_pushed(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    config = await push_blob(uploads, repo, b"{}")
    foreign = {
        "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "digest": str(Digest.of(b"windows base layer")),
        "size": 18,
        "urls": ["https://example.com/base"],
    }
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": CONFIG, **config},
            "layers": [foreign],
        }
    ).encode()
    assert (await content.put_manifest(repo, "win", raw, OCI_MANIFEST)).created


async def test_concurrent_pushes_of_one_tag(
    content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    raws = [await image(content, uploads, repo, str(i)) for i in range(8)]

    async def push(raw: bytes) -> None:
        await content.put_manifest(repo, "latest", raw, OCI_MANIFEST)

    async with anyio.create_task_group() as group:
        for raw in raws:
            group.start_soon(push, raw)
    assert (await content.manifest(repo, "latest")).content in raws
    for raw in raws:
        assert (await content.manifest(repo, str(Digest.of(raw)))).content == raw


def test_storage_fixture_is_the_filesystem(storage: FilesystemDriver) -> None:
    assert storage.name == "filesystem"
