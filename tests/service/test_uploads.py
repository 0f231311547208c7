"""The upload machinery: chunked appends, digests verified on commit, resumption from the
recorded offset after a failed append, a restart or a move to another node."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from cargohold.domain import hashstate
from cargohold.domain.digest import Digest
from cargohold.domain.errors import (
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
)
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.paths import blob_key
from cargohold.service.uploads import SLICE, UploadService
from cargohold.storage.filesystem import FilesystemDriver

pytestmark = pytest.mark.anyio


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def broken_body(*chunks: bytes) -> AsyncIterator[bytes]:
    """A request body whose client goes away after sending `chunks`."""
    for chunk in chunks:
        yield chunk
    raise ConnectionResetError("client went away")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def read_blob(storage: FilesystemDriver, digest: str) -> bytes:
    out = bytearray()
    async for chunk in storage.read(blob_key(Digest.parse(digest))):
        out += chunk
    return bytes(out)


def staged_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "storage" / "_uploads").iterdir())


async def test_start_and_status(uploads: UploadService, repo: Repository) -> None:
    started = await uploads.start(repo)
    assert uuid.UUID(started.id)
    found = await uploads.get(repo, started.id)
    assert (found.id, found.offset, found.repository_id) == (started.id, 0, repo.id)


async def test_unknown_uploads(
    uploads: UploadService, content: ContentService, repo: Repository
) -> None:
    other = await content.repository_for_push("other")
    started = await uploads.start(other)
    for upload_id in (str(uuid.uuid4()), "garbage", "../../etc/passwd", "", started.id):
        with pytest.raises(BlobUploadUnknown):
            await uploads.get(repo, upload_id)
        with pytest.raises(BlobUploadUnknown):
            await uploads.append(repo, upload_id, body(b"x"))
        with pytest.raises(BlobUploadUnknown):
            await uploads.finish(repo, upload_id, sha256(b"x"), None)
        with pytest.raises(BlobUploadUnknown):
            await uploads.cancel(repo, upload_id)
    # The other repository's upload was not touched by any of that.
    assert (await uploads.get(other, started.id)).offset == 0


async def test_chunked_upload(
    uploads: UploadService,
    content: ContentService,
    storage: FilesystemDriver,
    repo: Repository,
    tmp_path: Path,
) -> None:
    data = os.urandom(3 * SLICE + 777)
    upload = await uploads.start(repo)
    offset = 0
    for size in (1, SLICE - 1, SLICE + 5, len(data)):
        chunk = data[offset : offset + size]
        if not chunk:
            break
        upload = await uploads.append(
            repo, upload.id, body(chunk), start=offset, end=offset + len(chunk) - 1
        )
        offset += len(chunk)
        assert upload.offset == offset
        assert (await uploads.get(repo, upload.id)).offset == offset
    committed = await uploads.finish(repo, upload.id, sha256(data), None)
    assert (str(committed.digest), committed.size) == (sha256(data), len(data))
    location = await content.blob(repo, sha256(data))
    assert location.size == len(data)
    assert await read_blob(storage, sha256(data)) == data
    with pytest.raises(BlobUploadUnknown):
        await uploads.get(repo, upload.id)
    assert staged_files(tmp_path) == []


async def test_appends_without_content_range(uploads: UploadService, repo: Repository) -> None:
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(b"ab", b"cd"))
    await uploads.append(repo, upload.id, body(b"ef"), content_length=2)
    committed = await uploads.finish(repo, upload.id, sha256(b"abcdefgh"), body(b"gh"))
    assert committed.size == 8


async def test_finish_with_a_last_chunk_and_content_range(
    uploads: UploadService, storage: FilesystemDriver, repo: Repository
) -> None:
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(b"first "), start=0, end=5)
    await uploads.finish(
        repo, upload.id, sha256(b"first last"), body(b"last"), start=6, end=9, content_length=4
    )
    assert await read_blob(storage, sha256(b"first last")) == b"first last"


async def test_empty_blob(
    uploads: UploadService, content: ContentService, repo: Repository
) -> None:
    upload = await uploads.start(repo)
    committed = await uploads.finish(repo, upload.id, sha256(b""), None)
    assert committed.size == 0
    assert (await content.blob(repo, sha256(b""))).size == 0


@pytest.mark.parametrize(("start", "end"), [(1, 3), (5, 9), (0, -1)])
async def test_out_of_order_chunks(
    uploads: UploadService, repo: Repository, start: int, end: int
) -> None:
    upload = await uploads.start(repo)
    with pytest.raises(RangeInvalid) as raised:
        await uploads.append(repo, upload.id, body(b"abc"), start=start, end=end)
    assert raised.value.offset == 0
    await uploads.append(repo, upload.id, body(b"abc"), start=0, end=2)
    for bad_start, bad_end in ((0, 2), (2, 4), (4, 6)):  # overlapping, overlapping, a gap
        with pytest.raises(RangeInvalid) as raised:
            await uploads.append(repo, upload.id, body(b"xyz"), start=bad_start, end=bad_end)
        assert raised.value.offset == 3
    with pytest.raises(RangeInvalid):
        await uploads.finish(repo, upload.id, sha256(b"abcxyz"), body(b"xyz"), start=0, end=2)
    assert (await uploads.get(repo, upload.id)).offset == 3
    committed = await uploads.finish(repo, upload.id, sha256(b"abcxyz"), body(b"xyz"), start=3)
    assert committed.size == 6


async def test_declared_sizes_must_hold(
    uploads: UploadService, storage: FilesystemDriver, repo: Repository
) -> None:
    upload = await uploads.start(repo)
    with pytest.raises(SizeInvalid):  # Content-Length disagrees with Content-Range
        await uploads.append(repo, upload.id, body(b"abc"), start=0, end=2, content_length=4)
    with pytest.raises(SizeInvalid):  # body shorter than its range
        await uploads.append(repo, upload.id, body(b"ab"), start=0, end=2)
    with pytest.raises(SizeInvalid):  # body longer than its Content-Length
        await uploads.append(repo, upload.id, body(b"abcdef"), content_length=3)
    with pytest.raises(SizeInvalid):  # body cut short of its Content-Length
        await uploads.append(repo, upload.id, body(b"a" * 10), content_length=1000)
    assert (await uploads.get(repo, upload.id)).offset == 0
    # None of the refused bytes count: the upload goes on from where it stood.
    await uploads.append(repo, upload.id, body(b"good"), start=0, end=3)
    await uploads.finish(repo, upload.id, sha256(b"good"), None)
    assert await read_blob(storage, sha256(b"good")) == b"good"


async def test_an_interrupted_append_leaves_the_offset_where_it_was(
    uploads: UploadService, storage: FilesystemDriver, repo: Repository
) -> None:
    first, second = os.urandom(SLICE + 10), os.urandom(3000)
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(first))
    with pytest.raises(ConnectionResetError):
        await uploads.append(repo, upload.id, broken_body(b"junk" * SLICE, b"more junk"))
    assert (await uploads.get(repo, upload.id)).offset == len(first)
    await uploads.append(repo, upload.id, body(second), start=len(first))
    await uploads.finish(repo, upload.id, sha256(first + second), None)
    assert await read_blob(storage, sha256(first + second)) == first + second


async def test_a_cancelled_append_leaves_the_offset_where_it_was(
    uploads: UploadService, repo: Repository
) -> None:
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(b"kept"))

    with anyio.CancelScope() as client:

        async def stalls() -> AsyncIterator[bytes]:
            yield b"x" * (SLICE + 1)
            client.cancel()  # the client goes away once a slice is written
            await anyio.sleep_forever()
            yield b"never"

        await uploads.append(repo, upload.id, stalls())
    assert client.cancelled_caught
    assert (await uploads.get(repo, upload.id)).offset == 4
    committed = await uploads.finish(repo, upload.id, sha256(b"kept!"), body(b"!"))
    assert committed.size == 5


async def test_digest_mismatch_discards_the_upload(
    uploads: UploadService,
    content: ContentService,
    storage: FilesystemDriver,
    repo: Repository,
    tmp_path: Path,
) -> None:
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(b"actual content"))
    claimed = sha256(b"other content")
    with pytest.raises(DigestInvalid):
        await uploads.finish(repo, upload.id, claimed, None)
    for digest in (claimed, sha256(b"actual content")):
        with pytest.raises(BlobUnknown):
            await content.blob(repo, digest)
        assert await storage.stat(blob_key(Digest.parse(digest))) is None
    with pytest.raises(BlobUploadUnknown):
        await uploads.get(repo, upload.id)
    assert staged_files(tmp_path) == []


@pytest.mark.parametrize("digest", [None, "", "sha256:short", "md5:" + "0" * 32])
async def test_finish_needs_a_valid_digest(
    uploads: UploadService, repo: Repository, digest: str | None
) -> None:
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(b"abc"))
    with pytest.raises(DigestInvalid):
        await uploads.finish(repo, upload.id, digest, None)
    # A malformed request leaves the upload to be finished properly.
    assert (await uploads.get(repo, upload.id)).offset == 3
    await uploads.finish(repo, upload.id, sha256(b"abc"), None)


async def test_sha512(
    uploads: UploadService, content: ContentService, storage: FilesystemDriver, repo: Repository
) -> None:
    data = os.urandom(SLICE + 99)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(data[:100]))
    committed = await uploads.finish(repo, upload.id, digest, body(data[100:]))
    assert str(committed.digest) == digest
    assert (await content.blob(repo, digest)).size == len(data)
    assert blob_key(committed.digest).startswith("blobs/sha512/")
    assert await read_blob(storage, digest) == data
    # A sha512 that does not match is refused like a sha256 would be.
    upload = await uploads.start(repo)
    with pytest.raises(DigestInvalid):
        await uploads.finish(repo, upload.id, "sha512:" + "0" * 128, body(data))


async def test_without_resumable_hash_state_the_commit_rehashes(
    uploads: UploadService, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashstate, "_LIB", None)
    data = os.urandom(2 * SLICE + 1)
    upload = await uploads.start(repo)
    assert upload.hash_state is None
    await uploads.append(repo, upload.id, body(data[:SLICE]))
    await uploads.append(repo, upload.id, body(data[SLICE:]))
    assert (await uploads.finish(repo, upload.id, sha256(data), None)).size == len(data)
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(data))
    with pytest.raises(DigestInvalid):
        await uploads.finish(repo, upload.id, sha256(data + b"x"), None)


async def test_monolithic(
    uploads: UploadService, content: ContentService, repo: Repository, tmp_path: Path
) -> None:
    data = os.urandom(5000)
    committed = await uploads.monolithic(repo, sha256(data), body(data), len(data))
    assert committed.size == len(data)
    assert (await content.blob(repo, sha256(data))).size == len(data)
    with pytest.raises(DigestInvalid):
        await uploads.monolithic(repo, sha256(b"else"), body(data), len(data))
    with pytest.raises(SizeInvalid):
        await uploads.monolithic(repo, sha256(data), body(data), len(data) + 1)
    with pytest.raises(ConnectionResetError):
        await uploads.monolithic(repo, sha256(data), broken_body(data[:10]), len(data))
    with pytest.raises(DigestInvalid):
        await uploads.monolithic(repo, "sha256:nonsense", body(data), len(data))
    # Failed monolithic uploads leave no session and no staged bytes behind.
    assert staged_files(tmp_path) == []


async def test_monolithic_leaves_no_session(
    uploads: UploadService, store: MetadataStore, repo: Repository
) -> None:
    await uploads.monolithic(repo, sha256(b"a"), body(b"a"), 1)
    with pytest.raises(DigestInvalid):
        await uploads.monolithic(repo, sha256(b"b"), body(b"a"), 1)
    async with store.read() as tx:
        assert await tx.uploads.stale_uploads(float("inf")) == []


async def test_cancel(uploads: UploadService, repo: Repository, tmp_path: Path) -> None:
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(b"abc"))
    await uploads.cancel(repo, upload.id)
    with pytest.raises(BlobUploadUnknown):
        await uploads.get(repo, upload.id)
    with pytest.raises(BlobUploadUnknown):
        await uploads.append(repo, upload.id, body(b"d"))
    with pytest.raises(BlobUploadUnknown):
        await uploads.finish(repo, upload.id, sha256(b"abc"), None)
    assert staged_files(tmp_path) == []


async def test_lost_staging_is_an_unknown_upload(
    uploads: UploadService, storage: FilesystemDriver, repo: Repository
) -> None:
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(b"abc"))
    await storage.abort_upload(upload.driver_state)
    with pytest.raises(BlobUploadUnknown):
        await uploads.append(repo, upload.id, body(b"d"))
    with pytest.raises(BlobUploadUnknown):
        await uploads.finish(repo, upload.id, sha256(b"abc"), None)


async def test_two_appends_at_once_on_one_upload(uploads: UploadService, repo: Repository) -> None:
    upload = await uploads.start(repo)
    streaming, release = anyio.Event(), anyio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"slow"
        streaming.set()
        await release.wait()
        yield b"!"

    outcomes: list[str] = []

    async def first() -> None:
        await uploads.append(repo, upload.id, slow())
        outcomes.append("first done")

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        await streaming.wait()
        with pytest.raises(RangeInvalid):
            await uploads.append(repo, upload.id, body(b"interloper"))
        outcomes.append("second refused")
        release.set()
    assert outcomes == ["second refused", "first done"]
    assert (await uploads.finish(repo, upload.id, sha256(b"slow!"), None)).size == 5


async def test_another_node_continues_the_upload(
    uploads: UploadService,
    store: MetadataStore,
    storage: FilesystemDriver,
    repo: Repository,
    now: list[float],
) -> None:
    """A second service instance (another node) sees the same row and continues it."""
    other_node = UploadService(store, FilesystemDriver(storage.root), lambda: now[0] + 1)
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(b"node one, "))
    await other_node.append(repo, upload.id, body(b"node two, "), start=10)
    await uploads.append(repo, upload.id, body(b"node one"), start=20)
    committed = await other_node.finish(
        repo, upload.id, sha256(b"node one, node two, node one"), None
    )
    assert committed.size == 28


@pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True)
async def test_upload_survives_a_restart(db_url: str, tmp_path: Path, repo: Repository) -> None:
    """Everything an upload needs is in the database and the staging: new objects continue it."""
    data = os.urandom(SLICE * 2 + 3)
    first = MetadataStore.from_url(db_url)
    try:
        node = UploadService(first, FilesystemDriver(tmp_path / "storage"), lambda: 1.0)
        upload = await node.start(repo)
        await node.append(repo, upload.id, body(data[:SLICE]))
    finally:
        await first.close()
    second = MetadataStore.from_url(db_url)
    try:
        node = UploadService(second, FilesystemDriver(tmp_path / "storage"), lambda: 2.0)
        assert (await node.get(repo, upload.id)).offset == SLICE
        await node.append(repo, upload.id, body(data[SLICE:]), start=SLICE)
        committed = await node.finish(repo, upload.id, sha256(data), None)
    finally:
        await second.close()
    assert committed.size == len(data)


async def test_finish_while_an_append_streams_is_refused(
    uploads: UploadService, storage: FilesystemDriver, repo: Repository
) -> None:
    """Committing mid-append would let the append's bytes land in the committed blob."""
    upload = await uploads.start(repo)
    await uploads.append(repo, upload.id, body(b"head"))
    streaming, release = anyio.Event(), anyio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"x" * (SLICE + 1)
        streaming.set()
        await release.wait()
        yield b"tail"

    async def append_slowly() -> None:
        await uploads.append(repo, upload.id, slow())

    async with anyio.create_task_group() as group:
        group.start_soon(append_slowly)
        await streaming.wait()
        with pytest.raises(RangeInvalid):
            await uploads.finish(repo, upload.id, sha256(b"head"), None)
        with pytest.raises(RangeInvalid):
            await uploads.finish(repo, upload.id, sha256(b"headmore"), body(b"more"))
        release.set()
    whole = b"head" + b"x" * (SLICE + 1) + b"tail"
    assert await storage.stat(blob_key(Digest.parse(sha256(b"head")))) is None
    await uploads.finish(repo, upload.id, sha256(whole), None)
    assert await read_blob(storage, sha256(whole)) == whole


async def test_two_nodes_appending_at_once_never_corrupt_the_blob(
    uploads: UploadService,
    store: MetadataStore,
    storage: FilesystemDriver,
    repo: Repository,
    now: list[float],
) -> None:
    """Two nodes (no shared memory) take appends to one upload at the same moment: one may
    win, and what is committed is exactly what the winner's recorded digest says."""
    other_node = UploadService(store, FilesystemDriver(storage.root), lambda: now[0] + 1)
    upload = await uploads.start(repo)
    gates = {b"A": anyio.Event(), b"B": anyio.Event()}
    # Set once a node's append has written its first slice and waits at its gate, or has ended.
    paused = {b"A": anyio.Event(), b"B": anyio.Event()}
    ended = {b"A": anyio.Event(), b"B": anyio.Event()}
    outcome: dict[bytes, str] = {}

    async def stalling(fill: bytes) -> AsyncIterator[bytes]:
        yield fill * SLICE
        paused[fill].set()
        await gates[fill].wait()
        yield fill * 10

    async def append(node: UploadService, fill: bytes) -> None:
        try:
            await node.append(repo, upload.id, stalling(fill))
            outcome[fill] = "appended"
        except (BlobUploadUnknown, RangeInvalid, BlobUploadInvalid) as exc:
            outcome[fill] = type(exc).__name__
        finally:
            paused[fill].set()
            ended[fill].set()

    async with anyio.create_task_group() as group:
        group.start_soon(append, uploads, b"A")
        await paused[b"A"].wait()
        group.start_soon(append, other_node, b"B")
        await paused[b"B"].wait()
        gates[b"A"].set()
        await ended[b"A"].wait()
        gates[b"B"].set()
    winners = [fill for fill, result in outcome.items() if result == "appended"]
    assert len(winners) == 1, outcome
    data = winners[0] * (SLICE + 10)
    committed = await uploads.finish(repo, upload.id, sha256(data), None)
    assert await read_blob(storage, str(committed.digest)) == data
