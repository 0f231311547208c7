"""The metadata store on SQLite and PostgreSQL: every query, its conflicts and its cascades.

Each test runs twice through the `db_url` fixture (tests/conftest.py, `every_database`): on a
fresh SQLite file and in a fresh PostgreSQL schema.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
import pytest

from cargohold.domain.digest import Digest
from cargohold.domain.errors import RepositoryAlreadyExists
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
B1, B2, B3 = (str(Digest.of(x)) for x in (b"b1", b"b2", b"b3"))


async def new_repository(store: MetadataStore, name: str = "app") -> Repository:
    async with store.write() as tx:
        return await tx.repositories.create_repository(ACCOUNT, name, 10.0)


async def put_manifest(
    store: MetadataStore,
    repository_id: int,
    content: bytes,
    *,
    subject: str | None = None,
    artifact_type: str | None = None,
    blobs: tuple[str, ...] = (),
    children: tuple[str, ...] = (),
    annotations: dict[str, str] | None = None,
    now: float = 20.0,
) -> tuple[int, bool]:
    async with store.write() as tx:
        return await tx.manifests.put_manifest(
            repository_id=repository_id,
            digest=str(Digest.of(content)),
            media_type=OCI_MANIFEST,
            artifact_type=artifact_type,
            subject_digest=subject,
            content=content,
            image_size=123,
            annotations=annotations or {},
            blob_digests=blobs,
            child_digests=children,
            now=now,
        )


# -- registries and repositories -------------------------------------------------------------


async def test_ensure_registry_is_idempotent(store: MetadataStore) -> None:
    """Ensuring an existing registry again neither fails, nor adds a row, nor moves its
    creation time."""
    async with store.write() as tx:
        await tx.registries.ensure_registry(ACCOUNT, "us-east-1", 2.0)
        await tx.registries.ensure_registry(ACCOUNT, "us-east-1", 3.0)
    async with store.read() as tx:
        assert await tx.registries.list_registries() == [(ACCOUNT, "us-east-1", 1.0)]
        assert await tx.registries.registry_exists(ACCOUNT)


async def test_create_and_get_repository(store: MetadataStore) -> None:
    created = await new_repository(store, "team/app")
    assert created.name == "team/app" and created.registry_id == ACCOUNT
    assert created.tag_mutability == "MUTABLE" and created.scan_on_push is False
    async with store.read() as tx:
        assert await tx.repositories.get_repository(ACCOUNT, "team/app") == created
        assert await tx.repositories.get_repository(ACCOUNT, "team") is None
        assert await tx.repositories.get_repository("210987654321", "team/app") is None


async def test_duplicate_repository(store: MetadataStore) -> None:
    await new_repository(store)
    with pytest.raises(RepositoryAlreadyExists):
        await new_repository(store)


async def test_update_repository(store: MetadataStore) -> None:
    repository = await new_repository(store)
    async with store.write() as tx:
        await tx.repositories.update_repository(
            repository.id,
            tag_mutability="IMMUTABLE",
            tag_mutability_filters=[{"filter": "v*", "filterType": "WILDCARD"}],
            scan_on_push=True,
        )
    async with store.read() as tx:
        updated = await tx.repositories.get_repository(ACCOUNT, "app")
    assert updated is not None
    assert updated.tag_mutability == "IMMUTABLE"
    assert updated.tag_mutability_filters == [{"filter": "v*", "filterType": "WILDCARD"}]
    assert updated.scan_on_push is True


async def test_repositories_list_in_byte_order_with_pagination(store: MetadataStore) -> None:
    # Byte order: '-' < '.' < '/' < '0' < '_' < 'a'; a locale collation would order them otherwise.
    names = ["a-b", "a.b", "a/b", "a0", "a_b", "aa", "ab", "b"]
    for name in reversed(names):
        await new_repository(store, name)
    async with store.read() as tx:
        assert [r.name for r in await tx.repositories.list_repositories(ACCOUNT)] == names
        assert [r.name for r in await tx.repositories.list_repositories(ACCOUNT, limit=3)] == names[
            :3
        ]
        page = await tx.repositories.list_repositories(ACCOUNT, after="a/b", limit=2)
        assert [r.name for r in page] == ["a0", "a_b"]
        assert await tx.repositories.list_repositories(ACCOUNT, after="b") == []
        assert await tx.repositories.list_repositories("210987654321") == []


async def test_delete_repository_cascades(store: MetadataStore) -> None:
    repository = await new_repository(store)
    other = await new_repository(store, "other")
    manifest_id, _ = await put_manifest(store, repository.id, b"m", blobs=(B1,))
    async with store.write() as tx:
        await tx.blobs.add_blob(repository.id, B1, 2, 1.0)
        await tx.blobs.add_blob(other.id, B1, 2, 1.0)
        await tx.manifests.set_tag(repository.id, "latest", manifest_id, 1.0)
        await tx.uploads.create_upload(
            "00000000-0000-0000-0000-000000000001", repository.id, "sha256", None, {}, 1.0
        )
    async with store.write() as tx:
        assert await tx.manifests.count_manifests(repository.id) == 1
        await tx.repositories.delete_repository(repository.id)
    async with store.read() as tx:
        assert await tx.repositories.get_repository(ACCOUNT, "app") is None
        assert await tx.manifests.get_manifest(repository.id, str(Digest.of(b"m"))) is None
        assert await tx.manifests.tag_target(repository.id, "latest") is None
        assert await tx.uploads.get_upload("00000000-0000-0000-0000-000000000001") is None
        assert await tx.blobs.linked_blob_size(repository.id, B1) is None
        # The blob itself, and other repositories' links to it, stay.
        assert await tx.blobs.blob_size(B1) == 2
        assert await tx.blobs.linked_blob_size(other.id, B1) == 2


# -- blobs -----------------------------------------------------------------------------------


async def test_blob_links_are_the_access_boundary(store: MetadataStore) -> None:
    app = await new_repository(store, "app")
    other = await new_repository(store, "other")
    async with store.write() as tx:
        await tx.blobs.add_blob(app.id, B1, 10, 1.0)
        await tx.blobs.add_blob(app.id, B1, 10, 2.0)  # idempotent
    async with store.read() as tx:
        assert await tx.blobs.linked_blob_size(app.id, B1) == 10
        assert await tx.blobs.linked_blob_size(other.id, B1) is None
        assert await tx.blobs.blob_size(B1) == 10
        assert await tx.blobs.blob_size(B2) is None
    async with store.write() as tx:
        await tx.blobs.link_blob(other.id, B1, 3.0)
        await tx.blobs.link_blob(other.id, B1, 4.0)  # idempotent
    async with store.read() as tx:
        assert await tx.blobs.linked_blob_size(other.id, B1) == 10


async def test_linked_blob_sizes(store: MetadataStore) -> None:
    app = await new_repository(store)
    async with store.write() as tx:
        await tx.blobs.add_blob(app.id, B1, 1, 1.0)
        await tx.blobs.add_blob(app.id, B2, 22, 1.0)
    async with store.read() as tx:
        assert await tx.blobs.linked_blob_sizes(app.id, [B1, B2, B3, B1]) == {B1: 1, B2: 22}
        assert await tx.blobs.linked_blob_sizes(app.id, []) == {}


async def test_unlink_blob(store: MetadataStore) -> None:
    app = await new_repository(store)
    async with store.write() as tx:
        await tx.blobs.add_blob(app.id, B1, 1, 1.0)
    async with store.write() as tx:
        assert await tx.blobs.unlink_blob(app.id, B1) is True
        assert await tx.blobs.unlink_blob(app.id, B1) is False
    async with store.read() as tx:
        assert await tx.blobs.linked_blob_size(app.id, B1) is None


async def test_large_blob_sizes(store: MetadataStore) -> None:
    app = await new_repository(store)
    async with store.write() as tx:
        await tx.blobs.add_blob(app.id, B1, 7 * 2**40, 1.0)
    async with store.read() as tx:
        assert await tx.blobs.linked_blob_size(app.id, B1) == 7 * 2**40


# -- uploads ---------------------------------------------------------------------------------

UPLOAD = "5b0e4f36-3c3a-4f8e-8d7e-0a3b0b1f2c3d"


async def test_upload_lifecycle(store: MetadataStore) -> None:
    app = await new_repository(store)
    state = bytes(range(256)) * 2  # binary, with NULs
    async with store.write() as tx:
        await tx.uploads.create_upload(
            UPLOAD, app.id, "sha256", state, {"id": UPLOAD, "n": [1]}, 5.0
        )
    async with store.read() as tx:
        upload = await tx.uploads.get_upload(UPLOAD)
    assert upload is not None
    assert (upload.offset, upload.hash_algorithm, upload.hash_state) == (0, "sha256", state)
    assert upload.driver_state == {"id": UPLOAD, "n": [1]}
    assert (upload.repository_id, upload.created_at, upload.updated_at) == (app.id, 5.0, 5.0)

    async with store.write() as tx:
        moved = await tx.uploads.advance_upload(
            UPLOAD,
            from_offset=0,
            to_offset=100,
            hash_state=b"s2",
            driver_state={"id": UPLOAD, "parts": 1},
            now=6.0,
            part_count=1,
            last_part_size=100,
            smallest_earlier_part=None,
        )
        assert moved is True
    async with store.write() as tx:
        # Somebody else read offset 0 and tries to move it too: refused, nothing changes.
        stale = await tx.uploads.advance_upload(
            UPLOAD,
            from_offset=0,
            to_offset=50,
            hash_state=b"s3",
            driver_state={},
            now=7.0,
            part_count=1,
            last_part_size=50,
            smallest_earlier_part=None,
        )
        assert stale is False
    async with store.read() as tx:
        upload = await tx.uploads.get_upload(UPLOAD)
    assert upload is not None
    assert (upload.offset, upload.hash_state, upload.updated_at) == (100, b"s2", 6.0)
    assert (upload.part_count, upload.last_part_size, upload.smallest_earlier_part) == (
        1,
        100,
        None,
    )
    assert upload.driver_state == {"id": UPLOAD, "parts": 1}

    async with store.read() as tx:
        assert [u.id for u in await tx.uploads.stale_uploads(6.5)] == [UPLOAD]
        assert await tx.uploads.stale_uploads(6.0) == []
    async with store.write() as tx:
        assert await tx.uploads.delete_upload(UPLOAD) is True
        assert await tx.uploads.delete_upload(UPLOAD) is False
        assert await tx.uploads.get_upload(UPLOAD) is None


async def test_upload_without_hash_state(store: MetadataStore) -> None:
    app = await new_repository(store)
    async with store.write() as tx:
        await tx.uploads.create_upload(UPLOAD, app.id, "sha512", None, {}, 1.0)
    async with store.read() as tx:
        upload = await tx.uploads.get_upload(UPLOAD)
    assert upload is not None and upload.hash_state is None and upload.hash_algorithm == "sha512"


async def test_concurrent_advances_let_exactly_one_win(store: MetadataStore) -> None:
    app = await new_repository(store)
    async with store.write() as tx:
        await tx.uploads.create_upload(UPLOAD, app.id, "sha256", None, {}, 1.0)
    wins: list[int] = []

    async def advance(to: int) -> None:
        async with store.write() as tx:
            if await tx.uploads.advance_upload(
                UPLOAD,
                from_offset=0,
                to_offset=to,
                hash_state=None,
                driver_state={},
                now=2.0,
                part_count=1,
                last_part_size=to,
                smallest_earlier_part=None,
            ):
                wins.append(to)

    async with anyio.create_task_group() as group:
        for to in range(1, 9):
            group.start_soon(advance, to)
    assert len(wins) == 1
    async with store.read() as tx:
        upload = await tx.uploads.get_upload(UPLOAD)
    assert upload is not None and upload.offset == wins[0]


# -- manifests and tags ----------------------------------------------------------------------


async def test_put_manifest_is_idempotent_and_keeps_bytes(store: MetadataStore) -> None:
    app = await new_repository(store)
    content = b'{"schemaVersion": 2,  "x": "\xc3\xa9"}\n'
    first = await put_manifest(
        store, app.id, content, blobs=(B1, B2, B1), annotations={"k": "v"}, artifact_type="a/b"
    )
    again = await put_manifest(store, app.id, content, blobs=(B1, B2))
    assert first[1] is True and again == (first[0], False)
    async with store.read() as tx:
        manifest = await tx.manifests.get_manifest(app.id, str(Digest.of(content)))
    assert manifest is not None
    assert manifest.content == content and manifest.size == len(content)
    assert manifest.annotations == {"k": "v"} and manifest.artifact_type == "a/b"
    assert (manifest.media_type, manifest.image_size, manifest.pushed_at) == (
        OCI_MANIFEST,
        123,
        20.0,
    )
    assert manifest.last_pulled_at is None


async def test_manifests_are_per_repository(store: MetadataStore) -> None:
    app = await new_repository(store, "app")
    other = await new_repository(store, "other")
    await put_manifest(store, app.id, b"m1")
    await put_manifest(store, other.id, b"m1")
    await put_manifest(store, app.id, b"m2")
    d1, d2, d3 = (str(Digest.of(x)) for x in (b"m1", b"m2", b"m3"))
    async with store.read() as tx:
        assert await tx.manifests.existing_manifests(app.id, [d1, d2, d3]) == {d1, d2}
        assert await tx.manifests.existing_manifests(other.id, [d1, d2, d3]) == {d1}
        assert await tx.manifests.existing_manifests(other.id, []) == set()


async def test_tags(store: MetadataStore) -> None:
    app = await new_repository(store)
    m1, _ = await put_manifest(store, app.id, b"m1")
    m2, _ = await put_manifest(store, app.id, b"m2")
    async with store.write() as tx:
        await tx.manifests.set_tag(app.id, "latest", m1, 1.0)
        await tx.manifests.set_tag(app.id, "v1", m1, 1.0)
    async with store.read() as tx:
        assert await tx.manifests.tag_target(app.id, "latest") == m1
        assert await tx.manifests.tags_of(m1) == ["latest", "v1"]
        tagged = await tx.manifests.get_tagged_manifest(app.id, "latest")
        assert tagged is not None and tagged.content == b"m1"
    async with store.write() as tx:
        await tx.manifests.set_tag(app.id, "latest", m2, 2.0)  # moves the tag
    async with store.read() as tx:
        assert await tx.manifests.tag_target(app.id, "latest") == m2
        assert await tx.manifests.tags_of(m1) == ["v1"]
        assert await tx.manifests.tag_target(app.id, "nope") is None
        assert await tx.manifests.get_tagged_manifest(app.id, "nope") is None
    async with store.write() as tx:
        assert await tx.manifests.delete_tag(app.id, "v1") is True
        assert await tx.manifests.delete_tag(app.id, "v1") is False
    async with store.read() as tx:
        assert (
            await tx.manifests.get_manifest(app.id, str(Digest.of(b"m1"))) is not None
        )  # tag only


async def test_tags_list_in_byte_order_with_pagination(store: MetadataStore) -> None:
    app = await new_repository(store)
    manifest_id, _ = await put_manifest(store, app.id, b"m")
    names = ["1.0", "A", "B", "Z_", "_x", "a", "a-b", "a.b", "a_b", "b"]
    async with store.write() as tx:
        for name in reversed(names):
            await tx.manifests.set_tag(app.id, name, manifest_id, 1.0)
    async with store.read() as tx:
        assert await tx.manifests.list_tags(app.id) == names
        assert await tx.manifests.list_tags(app.id, limit=4) == names[:4]
        assert await tx.manifests.list_tags(app.id, after="Z_", limit=3) == ["_x", "a", "a-b"]
        assert await tx.manifests.list_tags(app.id, after="b") == []


async def test_delete_manifest_removes_its_tags(store: MetadataStore) -> None:
    app = await new_repository(store)
    manifest_id, _ = await put_manifest(store, app.id, b"m", blobs=(B1,), children=(B2,))
    async with store.write() as tx:
        await tx.manifests.set_tag(app.id, "latest", manifest_id, 1.0)
        await tx.manifests.set_tag(app.id, "v1", manifest_id, 1.0)
    async with store.write() as tx:
        await tx.manifests.delete_manifest(manifest_id)
    async with store.read() as tx:
        assert await tx.manifests.get_manifest(app.id, str(Digest.of(b"m"))) is None
        assert await tx.manifests.list_tags(app.id) == []
        assert await tx.manifests.count_manifests(app.id) == 0
    # The same bytes can be pushed again afterwards, as a new manifest.
    _, created = await put_manifest(store, app.id, b"m", blobs=(B1,), children=(B2,))
    assert created is True


async def test_a_tag_cannot_point_at_a_missing_manifest(store: MetadataStore) -> None:
    app = await new_repository(store)
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        async with store.write() as tx:
            await tx.manifests.set_tag(app.id, "dangling", 999_999, 1.0)
    async with store.read() as tx:
        assert await tx.manifests.list_tags(app.id) == []


async def test_record_pull(store: MetadataStore) -> None:
    app = await new_repository(store)
    manifest_id, _ = await put_manifest(store, app.id, b"m")
    async with store.write() as tx:
        await tx.manifests.record_pull(manifest_id, 99.5)
    async with store.read() as tx:
        manifest = await tx.manifests.get_manifest(app.id, str(Digest.of(b"m")))
    assert manifest is not None and manifest.last_pulled_at == 99.5


async def test_referrers(store: MetadataStore) -> None:
    app = await new_repository(store, "app")
    other = await new_repository(store, "other")
    subject = str(Digest.of(b"subject"))
    await put_manifest(store, app.id, b"sbom", subject=subject, artifact_type="x/sbom")
    await put_manifest(store, app.id, b"sig", subject=subject, artifact_type="x/sig")
    await put_manifest(store, app.id, b"sig2", subject=subject, artifact_type="x/sig")
    await put_manifest(store, app.id, b"unrelated", artifact_type="x/sig")
    await put_manifest(store, other.id, b"elsewhere", subject=subject, artifact_type="x/sig")
    async with store.read() as tx:
        every = await tx.manifests.referrers(app.id, subject, None)
        sigs = await tx.manifests.referrers(app.id, subject, "x/sig")
        none = await tx.manifests.referrers(app.id, subject, "x/other")
        unknown = await tx.manifests.referrers(app.id, str(Digest.of(b"nothing")), None)
    assert sorted(m.content for m in every) == [b"sbom", b"sig", b"sig2"]
    assert [m.digest for m in every] == sorted(m.digest for m in every)
    assert sorted(m.content for m in sigs) == [b"sig", b"sig2"]
    assert none == [] and unknown == []


async def test_list_manifests(store: MetadataStore) -> None:
    app = await new_repository(store)
    m1, _ = await put_manifest(store, app.id, b"m1", now=1.0)
    m2, _ = await put_manifest(store, app.id, b"m2", now=2.0)
    async with store.write() as tx:
        await tx.manifests.set_tag(app.id, "b", m1, 1.0)
        await tx.manifests.set_tag(app.id, "a", m1, 1.0)
    async with store.read() as tx:
        every = await tx.manifests.list_manifests(app.id)
        tagged = await tx.manifests.list_manifests(app.id, tagged=True)
        untagged = await tx.manifests.list_manifests(app.id, tagged=False)
        chosen = await tx.manifests.list_manifests(app.id, digests=[str(Digest.of(b"m2"))])
    assert [(m.id, m.tags) for m in every] == [(m1, ("a", "b")), (m2, ())]
    assert [m.id for m in tagged] == [m1]
    assert [m.id for m in untagged] == [m2]
    assert [m.id for m in chosen] == [m2]


# -- transactions and concurrency ------------------------------------------------------------


async def test_a_failed_write_rolls_back(store: MetadataStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            await tx.repositories.create_repository(ACCOUNT, "ghost", 1.0)
            raise RuntimeError("abandon")
    async with store.read() as tx:
        assert await tx.repositories.get_repository(ACCOUNT, "ghost") is None


async def test_concurrent_writers(store: MetadataStore) -> None:
    """Many transactions pushing one blob and moving one tag at once: all succeed, and the
    tag ends on one of the manifests, which exists."""
    app = await new_repository(store)
    ids: list[int] = []

    async def push(i: int) -> None:
        content = f"manifest {i}".encode()
        async with store.write() as tx:
            await tx.blobs.add_blob(app.id, B1, 5, float(i))
            manifest_id, _ = await tx.manifests.put_manifest(
                repository_id=app.id,
                digest=str(Digest.of(content)),
                media_type=OCI_MANIFEST,
                artifact_type=None,
                subject_digest=None,
                content=content,
                image_size=5,
                annotations={},
                blob_digests=[B1],
                child_digests=[],
                now=float(i),
            )
            await tx.manifests.set_tag(app.id, "latest", manifest_id, float(i))
            ids.append(manifest_id)

    async with anyio.create_task_group() as group:
        for i in range(12):
            group.start_soon(push, i)
    async with store.read() as tx:
        target = await tx.manifests.tag_target(app.id, "latest")
        assert target in ids
        assert await tx.manifests.get_tagged_manifest(app.id, "latest") is not None
        assert await tx.manifests.count_manifests(app.id) == 12
        assert await tx.blobs.linked_blob_size(app.id, B1) == 5


async def test_concurrent_create_repository(store: MetadataStore) -> None:
    outcomes: list[str] = []

    async def create() -> None:
        try:
            async with store.write() as tx:
                await tx.repositories.create_repository(ACCOUNT, "raced", 1.0)
            outcomes.append("created")
        except RepositoryAlreadyExists:
            outcomes.append("exists")

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(create)
    assert sorted(outcomes) == ["created"] + ["exists"] * 5
