"""The `s3` driver on SeaweedFS, beyond the conformance suite: uploads of many parts, what the
store holds while they are staged, the checks that keep a wrong blob from being committed, and
the refusals `serve` turns into a message."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from cargohold.ports import StorageError, StorageUnavailable, UploadState, UploadStateInvalid
from cargohold.storage import s3
from cargohold.storage.s3 import MIN_PART, S3Driver
from cargohold.storage.s3client import S3Settings
from support.seaweed import Seaweed

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def bucket(seaweed: Seaweed) -> str:
    return seaweed.new_bucket()


def settings(seaweed: Seaweed, bucket_name: str, **changes: Any) -> S3Settings:
    values: dict[str, Any] = {
        "bucket": bucket_name,
        "prefix": f"p{os.urandom(4).hex()}",
        "endpoint_url": seaweed.endpoint,
        "region": "us-east-1",
        "path_style": True,
        "access_key_id": seaweed.access_key,
        "secret_access_key": seaweed.secret_key,
    }
    values.update(changes)
    return S3Settings(**values)


@pytest.fixture
def driver(seaweed: Seaweed, bucket: str) -> S3Driver:
    return S3Driver(settings(seaweed, bucket), part_size=MIN_PART)


def through_json(state: UploadState) -> UploadState:
    result: UploadState = json.loads(json.dumps(state))
    return result


async def append(driver: S3Driver, state: UploadState, offset: int, data: bytes) -> UploadState:
    writer = await driver.open_upload(through_json(state), offset)
    for start in range(0, len(data), MIB):
        await writer.write([data[start : start + MIB]])
    return through_json(await writer.close())


def multipart_uploads(seaweed: Seaweed, bucket: str, driver: S3Driver) -> list[str]:
    answer = seaweed.client().list_multipart_uploads(Bucket=bucket, Prefix=driver.prefix)
    return [each["Key"] for each in answer.get("Uploads", [])]


async def test_an_upload_of_many_parts_in_chunks_of_any_size(
    driver: S3Driver, seaweed: Seaweed, bucket: str
) -> None:
    data = os.urandom(13 * MIB + 1777)
    state = await driver.begin_upload("many-parts")
    offset = 0
    # Chunks below, at and above the part size: each append may run on another node, so each
    # starts from the state alone.
    for size in (1000, 3 * MIB, 6 * MIB, 10, 4 * MIB + 767):
        state = await append(driver, state, offset, data[offset : offset + size])
        offset += size
    assert offset == len(data)
    assert [size for _, size in state["parts"]] == [5 * MIB + 1000, 5 * MIB + 10]
    assert state["tail_size"] == 3 * MIB + 767
    assert multipart_uploads(seaweed, bucket, driver) == [driver.data_key("many-parts")]
    with pytest.raises(UploadStateInvalid):
        [chunk async for chunk in driver.read_upload(state, len(data))]
    await driver.commit_upload(state, "blobs/sha256/aa/many", len(data))
    got = b"".join([chunk async for chunk in driver.read("blobs/sha256/aa/many")])
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    # Nothing staged is left: no multipart upload, no tail, no completed staging object.
    assert multipart_uploads(seaweed, bucket, driver) == []
    assert await driver.staged_uploads() == []
    assert await driver.list("") == ["blobs/sha256/aa/many"]


async def test_an_append_holds_at_most_about_one_part_in_memory(driver: S3Driver) -> None:
    state = await driver.begin_upload("bounded")
    writer = await driver.open_upload(state, 0)
    most = 0
    for _ in range(24):
        await writer.write([os.urandom(MIB)])
        most = max(most, sum(len(each) for each in writer._buffer))
    state = await writer.close()
    assert most < MIN_PART
    assert sum(size for _, size in state["parts"]) + state["tail_size"] == 24 * MIB


async def test_a_part_overwritten_by_a_racing_append_fails_the_commit(driver: S3Driver) -> None:
    """Two appends from one state (two nodes): the database records one; the other wrote the
    same part number with other bytes. The commit must refuse, or store exactly the recorded
    bytes (SeaweedFS keeps both uploads of the part and completes with the one named), never
    bytes the verified digest does not describe."""
    state = await append(driver, await driver.begin_upload("raced"), 0, b"a" * MIN_PART)
    kept = await append(driver, state, MIN_PART, b"b" * MIN_PART)
    await append(driver, state, MIN_PART, b"c" * MIN_PART)  # the loser, written last
    key = "blobs/sha256/aa/raced"
    try:
        await driver.commit_upload(kept, key, 2 * MIN_PART)
    except UploadStateInvalid:
        assert await driver.stat(key) is None
    else:
        got = b"".join([chunk async for chunk in driver.read(key)])
        assert got == b"a" * MIN_PART + b"b" * MIN_PART


async def test_a_part_the_store_lost_fails_the_commit(driver: S3Driver) -> None:
    state = await append(driver, await driver.begin_upload("lost"), 0, b"a" * MIN_PART)
    forged = through_json(state)
    forged["parts"][0][0] = '"0123456789abcdef0123456789abcdef"'
    with pytest.raises(UploadStateInvalid, match="not the part recorded"):
        await driver.commit_upload(forged, "blobs/sha256/aa/lost", MIN_PART)
    assert await driver.stat("blobs/sha256/aa/lost") is None


async def test_an_append_ending_with_a_part_s_worth_uploads_it_as_a_part(
    seaweed: Seaweed, bucket: str
) -> None:
    """What is left when an append ends is a tail only below S3's part minimum: a blob sent in
    one PATCH goes to the store once, never as a tail read back and uploaded again."""
    driver = S3Driver(settings(seaweed, bucket), part_size=8 * MIB)
    state = await append(driver, await driver.begin_upload("no-tail"), 0, os.urandom(13 * MIB))
    assert [size for _, size in state["parts"]] == [8 * MIB, 5 * MIB]
    assert (state["tail"], state["tail_size"]) == (None, 0)
    state = await append(driver, state, 13 * MIB, os.urandom(MIB))
    assert [size for _, size in state["parts"]] == [8 * MIB, 5 * MIB]
    assert state["tail_size"] == MIB


@pytest.mark.parametrize("size", [0, 1000, MIN_PART + 1000])
async def test_bytes_placed_then_removed_are_written_again_by_the_commit(
    driver: S3Driver, size: int
) -> None:
    """The copy to the blob's key happens before the commit's transaction; the collector may
    remove the bytes before the commit holds the blob's row. The commit, holding it, finds
    them gone and copies them again from the staging it kept until then."""
    data = os.urandom(size)
    name = f"placed-{size}"
    state = await driver.begin_upload(name)
    if size:
        state = await append(driver, state, 0, data)
    key = f"blobs/sha256/aa/{name}"
    placed = through_json(await driver.place_upload(state, key, size))
    assert b"".join([chunk async for chunk in driver.read(key)]) == data
    await driver.delete(key)
    await driver.commit_upload(placed, key, size)
    assert b"".join([chunk async for chunk in driver.read(key)]) == data
    assert await driver.staged_uploads() == []


async def test_a_commit_retried_after_its_transaction_failed(driver: S3Driver) -> None:
    """The multipart upload was completed, then the database refused the commit: the session's
    row still names the parts, and the retried commit uses the completed object."""
    data = os.urandom(MIN_PART + 10)
    state = await append(driver, await driver.begin_upload("retried"), 0, data)
    key = "blobs/sha256/aa/retried"
    await driver.place_upload(state, key, len(data))
    await driver.delete(key)
    placed = await driver.place_upload(state, key, len(data))
    await driver.commit_upload(placed, key, len(data))
    assert b"".join([chunk async for chunk in driver.read(key)]) == data


async def test_abort_removes_the_multipart_upload_and_its_tail(
    driver: S3Driver, seaweed: Seaweed, bucket: str
) -> None:
    state = await append(driver, await driver.begin_upload("aborted"), 0, os.urandom(6 * MIB))
    assert state["mpu"] is not None and state["tail"] is not None
    listed = await driver.staged_uploads()
    assert [each.upload_id for each in listed] == ["aborted"]
    # Expiry aborts from what it lists, when no session names the upload any more.
    await driver.abort_upload(through_json(listed[0].state))
    assert multipart_uploads(seaweed, bucket, driver) == []
    assert await driver.staged_uploads() == []
    with pytest.raises(UploadStateInvalid):
        await driver.open_upload(state, 6 * MIB)


async def test_a_presigned_url_serves_the_object_and_nothing_else(driver: S3Driver) -> None:
    await driver.put("blobs/sha256/aa/signed", b"signed bytes")
    url = await driver.redirect_url("blobs/sha256/aa/signed", 60)
    assert url is not None
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).content == b"signed bytes"
        ranged = await client.get(url, headers={"Range": "bytes=7-"})
        assert (ranged.status_code, ranged.content) == (206, b"bytes")
        assert (await client.get(url.replace("signed?", "other?"))).status_code == 403
        unsigned = url.split("?", 1)[0]
        assert (await client.get(unsigned)).status_code in (401, 403)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def signing_driver(
    seaweed: Seaweed, bucket: str, clock: Clock
) -> tuple[S3Driver, list[tuple[str, int]]]:
    """A driver on `clock`, and the list of each URL it signs (key, life)."""
    driver = S3Driver(settings(seaweed, bucket), part_size=MIN_PART, clock=clock)
    signed: list[tuple[str, int]] = []
    presign = driver.calls.presign

    def counting(key: str, expires_in: int) -> str:
        signed.append((key, expires_in))
        return presign(key, expires_in)

    driver.calls.presign = counting  # type: ignore[method-assign]
    return driver, signed


async def test_a_presigned_url_is_signed_for_twice_its_life_and_answered_again_while_it_lasts(
    seaweed: Seaweed, bucket: str
) -> None:
    clock = Clock()
    driver, signed = signing_driver(seaweed, bucket, clock)
    await driver.put("blobs/sha256/aa/reused", b"reused bytes")
    first = await driver.redirect_url("blobs/sha256/aa/reused", 300)
    assert first is not None and "X-Amz-Expires=600" in first
    clock.now += 299
    # At least 300 s of the 600 remain (the signature counts from a whole second, up to one
    # before): the same URL, signed once.
    assert await driver.redirect_url("blobs/sha256/aa/reused", 300) == first
    assert len(signed) == 1
    async with httpx.AsyncClient() as client:
        assert (await client.get(first)).content == b"reused bytes"
    clock.now += 0.5
    # Less than 300 s might remain: a new URL.
    second = await driver.redirect_url("blobs/sha256/aa/reused", 300)
    assert second is not None and len(signed) == 2
    # Another key, or another life asked for, is another URL.
    await driver.redirect_url("blobs/sha256/aa/other", 300)
    await driver.redirect_url("blobs/sha256/aa/reused", 3600)
    assert [expires for _, expires in signed] == [600, 600, 600, 7200]
    assert signed[2][0].endswith("blobs/sha256/aa/other")


async def test_the_urls_kept_for_reuse_are_bounded(
    seaweed: Seaweed, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "SIGNED_URLS", 2)
    driver, signed = signing_driver(seaweed, bucket, Clock())
    keys = [f"blobs/sha256/aa/k{i}" for i in range(3)]
    for key in keys:
        await driver.redirect_url(key, 60)
    # The two most recently used are kept; the first is gone and signed again.
    await driver.redirect_url(keys[2], 60)
    await driver.redirect_url(keys[1], 60)
    assert len(signed) == 3
    await driver.redirect_url(keys[0], 60)
    assert [key.rsplit("/", 1)[1] for key, _ in signed] == ["k0", "k1", "k2", "k0"]
    # k1, used after k2, stayed; k2 went for k0.
    await driver.redirect_url(keys[1], 60)
    await driver.redirect_url(keys[2], 60)
    assert [key.rsplit("/", 1)[1] for key, _ in signed] == ["k0", "k1", "k2", "k0", "k2"]


async def test_keys_live_under_the_prefix(driver: S3Driver, seaweed: Seaweed, bucket: str) -> None:
    await driver.put("blobs/sha256/aa/prefixed", b"x")
    listed = seaweed.client().list_objects_v2(Bucket=bucket, Prefix=driver.prefix)
    assert [each["Key"] for each in listed["Contents"]] == [
        f"{driver.prefix}blobs/sha256/aa/prefixed"
    ]


async def test_check_accepts_a_store_that_serves(driver: S3Driver) -> None:
    assert await driver.check() is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"secret_access_key": "wrong"}, "refused the credentials"),
        ({"access_key_id": "nobody"}, "refused the credentials"),
        ({"bucket": "no-such-bucket"}, "bucket 'no-such-bucket' does not exist"),
        ({"endpoint_url": "http://127.0.0.1:9"}, "cannot be reached"),
    ],
)
async def test_check_refuses_with_a_clear_message(
    seaweed: Seaweed, bucket: str, changes: dict[str, str], message: str
) -> None:
    driver = S3Driver(settings(seaweed, bucket, **changes))
    with pytest.raises(StorageError, match=message):
        await driver.check()


async def test_a_store_refusing_the_node_at_run_time_is_unavailable(
    seaweed: Seaweed, bucket: str
) -> None:
    """Keys revoked or a bucket removed while serving: not the request's fault, so the fronts
    answer 503 (StorageUnavailable), never 500."""
    revoked = S3Driver(settings(seaweed, bucket, secret_access_key="revoked"))
    with pytest.raises(StorageUnavailable):
        await revoked.put("blobs/sha256/aa/x", b"x")
    with pytest.raises(StorageUnavailable):
        [chunk async for chunk in revoked.read("blobs/sha256/aa/x")]
    removed = S3Driver(settings(seaweed, bucket, bucket="removed-" + os.urandom(4).hex()))
    with pytest.raises(StorageUnavailable):
        [chunk async for chunk in removed.read("blobs/sha256/aa/x")]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"secret_access_key": "wrong"}, "refused the credentials"),
        ({"bucket": "no-such-bucket"}, "does not exist"),
    ],
)
def test_serve_refuses_to_start_on_a_store_it_cannot_use(
    seaweed: Seaweed, bucket: str, tmp_path: Path, changes: dict[str, str], message: str
) -> None:
    storage = seaweed.storage_settings(bucket) | changes
    lines = ["[storage]", *(f"{key} = {json.dumps(value)}" for key, value in storage.items())]
    config = tmp_path / "cargohold.toml"
    config.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGOHOLD_", "AWS_"))}
    # The variables of clients talking to cargohold never become the store's credentials.
    env |= {"AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": seaweed.secret_key}
    command = [sys.executable, "-m", "cargohold", "serve", "--config", str(config)]
    done = subprocess.run(
        [*command, "--data-dir", str(tmp_path / "data"), "--port", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "cannot use the s3 storage" in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr


async def test_credentials_from_a_profile_not_from_the_clients_variables(
    seaweed: Seaweed, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without keys in the configuration, the store's credentials come from the AWS credential
    chain of `profile`; the AWS_* variables a shell holds for talking to cargohold itself (and
    AWS_ENDPOINT_URL, which would point at cargohold) do not leak into the store's client."""
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[store]\naws_access_key_id = {seaweed.access_key}\n"
        f"aws_secret_access_key = {seaweed.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACLIENTOFCARGOHOLD")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-store-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    profiled = S3Driver(
        settings(seaweed, bucket, access_key_id=None, secret_access_key=None, profile="store")
    )
    await profiled.put("blobs/sha256/aa/profiled", b"through the profile")
    assert await profiled.stat("blobs/sha256/aa/profiled") is not None
    # Without the profile the chain finds nothing: the client's variables are not the store's.
    monkeypatch.setenv("AWS_PROFILE", "store")
    unprofiled = S3Driver(settings(seaweed, bucket, access_key_id=None, secret_access_key=None))
    with pytest.raises(StorageError, match="no credentials for the object store"):
        await unprofiled.check()
