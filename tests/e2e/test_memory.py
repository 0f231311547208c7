"""A 1 GiB blob is pushed in chunks and pulled back while the server's memory stays flat."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from support.images import MIB, SeededStream
from support.server import RegistryServer
from support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

BLOB_SIZE = 1 << 30
CHUNK_SIZE = 64 * MIB
RSS_BUDGET = 64 * MIB


def rss(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    process = psutil.Process(pid)
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def steady_rss(pid: int, samples: int = 5, tolerance: int = 2 * MIB) -> int:
    """The tree's resident memory once it has settled: the peak of the first `samples`
    readings in a row, 0.05 s apart, that lie within `tolerance` of each other."""
    window: list[int] = []

    def settled() -> int:
        window.append(rss(pid))
        del window[:-samples]
        steady = len(window) == samples and max(window) - min(window) <= tolerance
        return max(window) if steady else 0

    return wait_until(
        settled,
        timeout=30,
        interval=0.05,
        message=lambda: f"the server's memory never settled: last readings {window}",
    )


class RssSampler:
    """Samples a process tree's RSS every `interval` seconds in a thread and keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak = 0
        self.samples = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss(self._pid))
                self.samples += 1
            except psutil.NoSuchProcess:
                return
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def push_chunked(client: httpx.Client, name: str, stream: SeededStream, size: int) -> str:
    """POST, then one streamed PATCH per CHUNK_SIZE with `Content-Range`, then PUT ?digest=."""
    started = client.post(f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    hasher = hashlib.sha256()

    def body(length: int) -> Iterator[bytes]:
        while length > 0:
            piece = stream.read(min(MIB, length))
            hasher.update(piece)
            length -= len(piece)
            yield piece

    offset = 0
    while offset < size:
        length = min(CHUNK_SIZE, size - offset)
        end = offset + length - 1
        response = client.patch(
            location,
            content=body(length),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(length),
                "Content-Range": f"{offset}-{end}",
            },
        )
        assert response.status_code == 202, (offset, response.status_code, response.text)
        assert response.headers["Range"] == f"0-{end}"
        location = response.headers["Location"]
        offset += length

    digest = "sha256:" + hasher.hexdigest()
    separator = "&" if "?" in location else "?"
    done = client.put(f"{location}{separator}digest={digest}")
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    return digest


def pull_digest(client: httpx.Client, name: str, digest: str) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with client.stream("GET", f"/v2/{name}/blobs/{digest}") as response:
        assert response.status_code == 200, response.status_code
        for chunk in response.iter_bytes(MIB):
            hasher.update(chunk)
            size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


def test_one_gib_blob_streams_in_bounded_memory(registry: RegistryServer) -> None:
    name = "e2e/memory"
    registry.create_repository(name)
    with registry.client(timeout=120.0) as client:
        # Warm the server's code paths (and its connection pool) before taking the baseline.
        warm = push_chunked(client, name, SeededStream(2, 3 * MIB), 3 * MIB)
        assert pull_digest(client, name, warm) == (warm, 3 * MIB)
        baseline = steady_rss(registry.pid)

        with RssSampler(registry.pid) as sampler:
            started = time.monotonic()
            digest = push_chunked(client, name, SeededStream(1, BLOB_SIZE), BLOB_SIZE)
            pushed_at = time.monotonic()
            head = client.head(f"/v2/{name}/blobs/{digest}")
            assert head.status_code == 200
            assert int(head.headers["Content-Length"]) == BLOB_SIZE
            assert pull_digest(client, name, digest) == (digest, BLOB_SIZE)
            finished = time.monotonic()

    growth = sampler.peak - baseline
    report = (
        f"baseline {baseline / MIB:.1f} MiB, peak {sampler.peak / MIB:.1f} MiB, "
        f"growth {growth / MIB:.1f} MiB over {sampler.samples} samples; "
        f"push {pushed_at - started:.1f}s, pull {finished - pushed_at:.1f}s"
    )
    print(report)
    assert sampler.samples > 10, report
    assert growth < RSS_BUDGET, report
