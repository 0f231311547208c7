"""The one conformance suite every `StorageDriver` passes.

Each test runs over the `driver` fixture; a new backend (S3, …) joins by adding one entry to
`DRIVERS`. Upload state is always sent through JSON between calls, as the service stores it in the
`uploads` table, so a driver cannot lean on Python objects surviving between requests.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

from cargohold.ports import (
    KeyNotFound,
    StorageDriver,
    StorageError,
    UploadState,
    UploadStateInvalid,
)
from cargohold.storage.filesystem import FilesystemDriver
from cargohold.storage.s3 import MIN_PART, S3Driver
from cargohold.storage.s3client import S3Settings
from support.seaweed import Seaweed

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def _filesystem(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    return FilesystemDriver(tmp_path / "root")


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    """A fresh prefix of one bucket on SeaweedFS, with S3's smallest part size so that the
    suite's uploads of a few MiB span several parts."""
    store: Seaweed = request.getfixturevalue("seaweed")
    bucket = request.getfixturevalue("s3_bucket")
    settings = S3Settings(
        bucket=bucket,
        prefix=f"t{os.urandom(6).hex()}/",
        endpoint_url=store.endpoint,
        region="us-east-1",
        path_style=True,
        access_key_id=store.access_key,
        secret_access_key=store.secret_key,
    )
    return S3Driver(settings, part_size=MIN_PART)


#: name → factory of a fresh, empty driver.
DRIVERS: dict[str, Callable[[pytest.FixtureRequest, Path], StorageDriver]] = {
    "filesystem": _filesystem,
    "s3": _s3,
}


@pytest.fixture(scope="module")
def s3_bucket(seaweed: Seaweed) -> str:
    return seaweed.new_bucket()


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    factory = DRIVERS[request.param]
    return factory(request, tmp_path)


def stored(state: UploadState) -> UploadState:
    """The state as it comes back from the database: through JSON."""
    result: UploadState = json.loads(json.dumps(state))
    return result


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    out = bytearray()
    async for chunk in chunks:
        out += chunk
    return bytes(out)


async def stage(driver: StorageDriver, upload_id: str, *parts: bytes) -> UploadState:
    """Begin an upload and append each part in its own open/close, as PATCHes do."""
    state = stored(await driver.begin_upload(upload_id))
    offset = 0
    for part in parts:
        writer = await driver.open_upload(state, offset)
        await writer.write([part])
        state = stored(await writer.close())
        offset += len(part)
    return state


def upload_id() -> str:
    return os.urandom(16).hex()


# -- objects ---------------------------------------------------------------------------------


async def test_stat_of_a_missing_key(driver: StorageDriver) -> None:
    assert await driver.stat("blobs/sha256/aa/missing") is None


async def test_put_then_stat_and_read(driver: StorageDriver) -> None:
    await driver.put("blobs/sha256/ab/one", b"hello world")
    info = await driver.stat("blobs/sha256/ab/one")
    assert info is not None
    assert (info.key, info.size) == ("blobs/sha256/ab/one", 11)
    assert await collect(driver.read("blobs/sha256/ab/one")) == b"hello world"


async def test_put_of_an_empty_object(driver: StorageDriver) -> None:
    await driver.put("k/empty", b"")
    info = await driver.stat("k/empty")
    assert info is not None and info.size == 0
    assert await collect(driver.read("k/empty")) == b""


async def test_read_with_offset_and_length(driver: StorageDriver) -> None:
    data = os.urandom(3 * MIB + 12345)
    await driver.put("k/big", data)
    cases = [
        (0, None),
        (1, None),
        (MIB - 1, None),
        (MIB, 2),
        (MIB - 1, MIB + 2),
        (5, 0),
        (len(data) - 1, None),
        (len(data) - 10, 100),  # a length past the end stops at the end
        (len(data), None),
        (len(data) + 5, 10),
    ]
    for offset, length in cases:
        got = await collect(driver.read("k/big", offset, length))
        end = None if length is None else offset + length
        assert got == data[offset:end], (offset, length)


async def test_read_streams_in_bounded_chunks(driver: StorageDriver) -> None:
    await driver.put("k/big", os.urandom(5 * MIB))
    sizes = [len(chunk) async for chunk in driver.read("k/big")]
    assert sum(sizes) == 5 * MIB
    assert len(sizes) > 1 and max(sizes) <= 4 * MIB


async def test_read_of_a_missing_key(driver: StorageDriver) -> None:
    with pytest.raises(KeyNotFound):
        await collect(driver.read("k/missing"))


async def test_put_replaces_atomically(driver: StorageDriver) -> None:
    """Readers racing overwrites see one whole version, never a mix or a prefix."""
    versions = [bytes([i]) * (2 * MIB + 7) for i in range(1, 5)]
    await driver.put("k/racy", versions[0])
    seen: list[bytes] = []

    async def writer(data: bytes) -> None:
        await driver.put("k/racy", data)

    async def reader() -> None:
        for _ in range(5):
            seen.append(await collect(driver.read("k/racy")))

    async with anyio.create_task_group() as group:
        for data in versions[1:]:
            group.start_soon(writer, data)
        for _ in range(4):
            group.start_soon(reader)
    assert seen
    for got in seen:
        assert got in versions, f"a reader saw {len(got)} bytes that are no version"
    assert await collect(driver.read("k/racy")) in versions[1:]


async def test_delete(driver: StorageDriver) -> None:
    await driver.put("k/gone", b"x")
    await driver.delete("k/gone")
    assert await driver.stat("k/gone") is None
    with pytest.raises(KeyNotFound):
        await collect(driver.read("k/gone"))
    await driver.delete("k/gone")  # deleting what is absent is no error


async def test_list_by_prefix(driver: StorageDriver) -> None:
    keys = ["blobs/sha256/aa/1", "blobs/sha256/ab/2", "blobs/sha512/aa/3", "other/4"]
    for key in reversed(keys):
        await driver.put(key, b"x")
    assert await driver.list("blobs/") == keys[:3]
    assert await driver.list("blobs/sha256/") == keys[:2]
    assert await driver.list("blobs/sha256/aa/") == keys[:1]
    assert await driver.list("") == keys
    assert await driver.list("nothing/") == []


async def test_list_shows_no_staging_or_temporary_objects(driver: StorageDriver) -> None:
    await stage(driver, upload_id(), b"staged bytes")
    await driver.put("blobs/sha256/aa/1", b"x")
    assert await driver.list("") == ["blobs/sha256/aa/1"]


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../outside", "blobs/../../outside", "a/../../b", "a\\..\\b"]
)
async def test_keys_escaping_the_root_are_refused(
    driver: StorageDriver, key: str, tmp_path: Path
) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(StorageError):
        await driver.put(key, b"escape")
    with pytest.raises(StorageError):
        await driver.stat(key)
    with pytest.raises(StorageError):
        await collect(driver.read(key))
    with pytest.raises(StorageError):
        await driver.delete(key)
    with pytest.raises(StorageError):
        await driver.commit_upload(await stage(driver, upload_id(), b"x"), key, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


async def test_local_path_and_redirect_url(driver: StorageDriver) -> None:
    await driver.put("k/local", b"on disk")
    path = driver.local_path("k/local")
    if path is not None:
        assert Path(path).read_bytes() == b"on disk"
    url = await driver.redirect_url("k/local", 60)
    assert url is None or url.startswith(("http://", "https://"))


# -- uploads ---------------------------------------------------------------------------------


async def test_upload_state_is_json(driver: StorageDriver) -> None:
    state = await driver.begin_upload(upload_id())
    assert stored(state) == state


async def test_upload_in_parts_then_commit(driver: StorageDriver) -> None:
    parts = [os.urandom(n) for n in (1, MIB + 3, 0, 4096, 2 * MIB)]
    state = await stage(driver, upload_id(), *parts)
    whole = b"".join(parts)
    assert await collect(driver.read_upload(state, len(whole))) == whole
    await driver.commit_upload(state, "blobs/sha256/cc/whole", len(whole))
    info = await driver.stat("blobs/sha256/cc/whole")
    assert info is not None and info.size == len(whole)
    assert await collect(driver.read("blobs/sha256/cc/whole")) == whole


async def test_many_writes_in_one_append(driver: StorageDriver) -> None:
    state = stored(await driver.begin_upload(upload_id()))
    writer = await driver.open_upload(state, 0)
    for i in range(10):
        await writer.write([bytes([i]) * 1000])
    state = stored(await writer.close())
    expected = b"".join(bytes([i]) * 1000 for i in range(10))
    await driver.commit_upload(state, "k/many", len(expected))
    assert await collect(driver.read("k/many")) == expected


async def test_empty_upload_commits_an_empty_object(driver: StorageDriver) -> None:
    state = stored(await driver.begin_upload(upload_id()))
    await driver.commit_upload(state, "k/empty", 0)
    info = await driver.stat("k/empty")
    assert info is not None and info.size == 0


async def test_read_upload_stops_at_the_recorded_size(driver: StorageDriver) -> None:
    state = await stage(driver, upload_id(), b"0123456789")
    assert await collect(driver.read_upload(state, 4)) == b"0123"


async def test_reopen_at_an_offset_discards_staged_bytes_past_it(driver: StorageDriver) -> None:
    """An append that was written but never recorded is cut off by the next append."""
    state = await stage(driver, upload_id(), b"A" * 100)
    writer = await driver.open_upload(state, 60)
    await writer.write([b"xyz"])
    state = stored(await writer.close())
    # The 37 bytes past the new end are gone, not hidden behind a size.
    with pytest.raises(UploadStateInvalid):
        await driver.open_upload(state, 100)
    with pytest.raises(UploadStateInvalid):
        await driver.commit_upload(state, "k/cut", 100)
    await driver.commit_upload(state, "k/cut", 63)
    assert await collect(driver.read("k/cut")) == b"A" * 60 + b"xyz"


async def test_reopen_at_an_offset_then_commit_the_shorter_size(driver: StorageDriver) -> None:
    state = await stage(driver, upload_id(), b"B" * 50)
    writer = await driver.open_upload(state, 20)
    state = stored(await writer.close())
    await driver.commit_upload(state, "k/short", 20)
    assert await collect(driver.read("k/short")) == b"B" * 20


async def test_abort_of_an_append_keeps_the_upload_at_its_offset(driver: StorageDriver) -> None:
    state = await stage(driver, upload_id(), b"kept")
    writer = await driver.open_upload(state, 4)
    await writer.write([b"lost" * 1000])
    await writer.abort()
    writer = await driver.open_upload(state, 4)
    await writer.write([b"!"])
    state = stored(await writer.close())
    with pytest.raises(UploadStateInvalid):
        await driver.commit_upload(state, "k/aborted-append", 6)
    await driver.commit_upload(state, "k/aborted-append", 5)
    assert await collect(driver.read("k/aborted-append")) == b"kept!"


async def test_open_past_the_staged_bytes_is_refused(driver: StorageDriver) -> None:
    state = await stage(driver, upload_id(), b"abc")
    with pytest.raises(UploadStateInvalid):
        await driver.open_upload(state, 4)


async def test_commit_of_a_short_staging_is_refused(driver: StorageDriver) -> None:
    state = await stage(driver, upload_id(), b"ten bytes!")
    with pytest.raises(UploadStateInvalid):
        await driver.commit_upload(state, "k/never", 20)
    assert await driver.stat("k/never") is None


async def test_commit_consumes_the_staging(driver: StorageDriver) -> None:
    state = await stage(driver, upload_id(), b"once")
    await driver.commit_upload(state, "k/once", 4)
    with pytest.raises(UploadStateInvalid):
        await driver.open_upload(state, 4)
    with pytest.raises(UploadStateInvalid):
        await driver.commit_upload(state, "k/twice", 4)
    with pytest.raises(UploadStateInvalid):
        await collect(driver.read_upload(state, 4))
    assert await driver.stat("k/twice") is None


async def test_commit_over_an_existing_object(driver: StorageDriver) -> None:
    """Two pushes of one blob both commit to its key; the second replaces it whole."""
    await driver.put("k/same", b"same bytes")
    state = await stage(driver, upload_id(), b"same bytes")
    await driver.commit_upload(state, "k/same", 10)
    assert await collect(driver.read("k/same")) == b"same bytes"


async def test_abort_upload(driver: StorageDriver) -> None:
    state = await stage(driver, upload_id(), b"abandoned")
    await driver.abort_upload(state)
    with pytest.raises(UploadStateInvalid):
        await driver.open_upload(state, 0)
    with pytest.raises(UploadStateInvalid):
        await driver.commit_upload(state, "k/abandoned", 9)
    await driver.abort_upload(state)  # twice is no error
    assert await driver.stat("k/abandoned") is None


async def test_uploads_are_independent(driver: StorageDriver) -> None:
    first = await stage(driver, upload_id(), b"first")
    second = await stage(driver, upload_id(), b"second")
    await driver.abort_upload(first)
    await driver.commit_upload(second, "k/second", 6)
    assert await collect(driver.read("k/second")) == b"second"


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "", "..", "x y"])
async def test_upload_state_naming_no_valid_staging(driver: StorageDriver, bad_id: str) -> None:
    """A state whose names were tampered with (in the database) never reaches outside."""
    state = stored(await driver.begin_upload(upload_id()))
    forged = {k: bad_id if isinstance(v, str) else v for k, v in state.items()}
    assert forged != state
    with pytest.raises(UploadStateInvalid):
        await driver.open_upload(forged, 0)
    with pytest.raises(UploadStateInvalid):
        await driver.commit_upload(forged, "k/forged", 0)
    assert await driver.stat("k/forged") is None


async def test_a_second_writer_never_corrupts_the_first(driver: StorageDriver) -> None:
    """Two appends at one offset (two nodes serving one upload): the metadata keeps only one of
    them, and the committed object must then be exactly that one's bytes. A driver may refuse
    the second writer outright."""
    state = await stage(driver, upload_id(), b"head:")
    first = await driver.open_upload(state, 5)
    await first.write([b"A" * 70_000])
    try:
        second = await driver.open_upload(state, 5)
    except UploadStateInvalid:
        second = None
    if second is not None:
        await second.write([b"B" * 90_000])
        await second.close()  # its state is dropped: the database took the first append
    await first.write([b"A" * 30_000])
    kept = stored(await first.close())
    await driver.commit_upload(kept, "k/contended", 5 + 100_000)
    assert await collect(driver.read("k/contended")) == b"head:" + b"A" * 100_000


async def test_a_commit_never_takes_in_a_running_append(driver: StorageDriver) -> None:
    """Committing while an append still writes: the commit is refused, or the object is the
    committed bytes and stays so whatever the append goes on writing."""
    state = await stage(driver, upload_id(), b"committed")
    writer = await driver.open_upload(state, 9)
    await writer.write([b"late bytes"])
    try:
        await driver.commit_upload(state, "k/racing-commit", 9)
    except UploadStateInvalid:
        await writer.close()
        await driver.commit_upload(state, "k/racing-commit", 9)
    else:
        await writer.write([b"more late bytes" * 1000])
        await writer.abort()
    assert await collect(driver.read("k/racing-commit")) == b"committed"
    info = await driver.stat("k/racing-commit")
    assert info is not None and info.size == 9


async def test_a_writer_shows_each_chunk_to_its_observer_in_order(driver: StorageDriver) -> None:
    state = await driver.begin_upload("observed")
    seen: list[bytes] = []
    writer = await driver.open_upload(state, 0)
    await writer.write([b"ab", b"cd"], seen.append)
    await writer.write([b"e"], seen.append)
    state = await writer.close()
    assert seen == [b"ab", b"cd", b"e"]
    assert b"".join([c async for c in driver.read_upload(state, 5)]) == b"abcde"


# -- the staging area, as expiry sees it ----------------------------------------------------


async def test_staged_uploads_lists_what_is_staged_with_a_state_to_remove_it(
    driver: StorageDriver,
) -> None:
    before = time.time()
    kept, committed, aborted = upload_id(), upload_id(), upload_id()
    await stage(driver, kept, b"staged")
    await driver.commit_upload(await stage(driver, committed, b"c"), "blobs/x/committed", 1)
    await driver.abort_upload(await stage(driver, aborted, b"a"))
    listed = await driver.staged_uploads()
    assert [each.upload_id for each in listed] == [kept]
    assert listed[0].modified_at >= before - 2  # timestamp granularity
    await driver.abort_upload(stored(listed[0].state))
    assert await driver.staged_uploads() == []


async def test_opening_staging_for_writing_marks_it_in_use(tmp_path: Path) -> None:
    """Expiry leaves staging modified since its cutoff alone: an append opening it counts,
    before it writes a byte."""
    driver = FilesystemDriver(tmp_path / "root")
    state = await stage(driver, upload_id(), b"old bytes")
    path = tmp_path / "root" / "_uploads" / state["id"]
    os.utime(path, (1_000_000.0, 1_000_000.0))
    assert [each.modified_at for each in await driver.staged_uploads()] == [1_000_000.0]
    writer = await driver.open_upload(state, 9)
    try:
        [listed] = await driver.staged_uploads()
        assert listed.modified_at > time.time() - 60
    finally:
        await writer.abort()


async def test_staged_uploads_skips_names_no_upload_has(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path / "root")
    (tmp_path / "root" / "_uploads" / "not.an.upload").write_bytes(b"x")
    (tmp_path / "root" / "_uploads" / "a-directory").mkdir()
    assert await driver.staged_uploads() == []


async def test_a_commit_whose_staging_was_removed_meanwhile_is_refused(
    driver: StorageDriver,
) -> None:
    state = await stage(driver, upload_id(), b"bytes")
    await driver.abort_upload(state)
    with pytest.raises(UploadStateInvalid):
        await driver.commit_upload(state, "blobs/x/gone", 5)
    assert await driver.stat("blobs/x/gone") is None
