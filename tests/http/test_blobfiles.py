"""Blob files served whole from the page cache, from worker threads, or from both in turns, and
ranges and HEAD as FileResponse serves them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from cargohold.http import blobfiles
from cargohold.http.blobfiles import SLICE, BlobFileResponse, read_cached

pytestmark = pytest.mark.anyio

SIZES = [0, 1, SLICE - 1, SLICE, SLICE + 1, 3 * SLICE + 5]


def blob(tmp_path: Path, size: int) -> Path:
    path = tmp_path / f"blob-{size}"
    path.write_bytes(os.urandom(size))
    return path


async def fetch(path: Path, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await BlobFileResponse(path, media_type="application/octet-stream")(scope, receive, send)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, "/", headers=headers)


def test_read_cached_gives_the_bytes_or_nothing(tmp_path: Path) -> None:
    path = blob(tmp_path, 3 * SLICE)
    expected = path.read_bytes()  # now in the page cache
    fd = os.open(path, os.O_RDONLY)
    try:
        got = read_cached(fd, SLICE, SLICE)
        assert got is None or bytes(got) == expected[SLICE : 2 * SLICE]
        tail = read_cached(fd, SLICE, 3 * SLICE - 10)
        assert tail is None or bytes(tail) == expected[-10:], "a short read is trimmed"
        assert read_cached(fd, SLICE, 3 * SLICE) is None, "nothing past the end"
    finally:
        os.close(fd)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("cache", ["page cache", "threads", "half and half"])
async def test_a_whole_blob_arrives_intact(
    tmp_path: Path, size: int, cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = blob(tmp_path, size)
    real = read_cached
    calls = 0

    def partly_cached(fd: int, want: int, offset: int) -> bytearray | None:
        nonlocal calls
        calls += 1
        if cache == "threads" or (cache == "half and half" and calls % 2 == 0):
            return None
        got = real(fd, want, offset)
        if got is None:  # a filesystem without RWF_NOWAIT: read it here to test the same path
            got = bytearray(os.pread(fd, want, offset))
        return got[: max(1, len(got) // 2)] if cache == "half and half" else got

    monkeypatch.setattr(blobfiles, "read_cached", partly_cached)
    response = await fetch(path)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(size)
    assert response.content == path.read_bytes()


async def test_ranges_and_head_are_served_as_files_are(tmp_path: Path) -> None:
    path = blob(tmp_path, SLICE + 100)
    data = path.read_bytes()
    ranged = await fetch(path, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    head = await fetch(path, "HEAD")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data))
