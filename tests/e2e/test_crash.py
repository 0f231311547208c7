"""SIGKILL in the middle of a large push leaves a consistent store, and the push can be repeated."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from support.clients import ACCEPT_MANIFESTS, Skopeo
from support.images import (
    DOCKER_MANIFEST_LIST,
    MIB,
    OCI_INDEX,
    Image,
    OciLayout,
    SeededStream,
    large_image,
    sha256_digest,
    small_image,
)
from support.server import RegistryServer
from support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

# ~208 MiB over four layers of different sizes, so some finish while others are still streaming.
LAYER_SIZES = (8 * MIB, 40 * MIB, 64 * MIB, 96 * MIB)
# Kill once the server has read this much of the push from its sockets.
KILL_AFTER_BYTES = 90 * MIB
PUSH_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def big_layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[OciLayout, Image]:
    layout = OciLayout(tmp_path_factory.mktemp("big") / "oci")
    return layout, large_image(layout, tag="big", layer_sizes=LAYER_SIZES, seed=7)


def _bytes_read(process: psutil.Process) -> int:
    """Bytes the server and its children have read through read()/recv() (sockets included)."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.io_counters().read_chars
        except psutil.NoSuchProcess:
            continue
    return total


def _bytes_written(process: psutil.Process) -> int:
    """Bytes the server and its children have written through write()/send()."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.io_counters().write_chars
        except psutil.NoSuchProcess:
            continue
    return total


def _catalog(http: httpx.Client) -> list[str]:
    names: list[str] = []
    url: str | None = "/v2/_catalog"
    while url is not None:
        response = http.get(url)
        assert response.status_code == 200, response.text
        names += response.json()["repositories"]
        link = response.headers.get("Link")
        url = link.split(";")[0].strip().strip("<>") if link else None
    return names


def _tags(http: httpx.Client, name: str) -> list[str]:
    response = http.get(f"/v2/{name}/tags/list")
    assert response.status_code == 200, (name, response.text)
    return list(response.json().get("tags") or [])


def _check_manifest(http: httpx.Client, name: str, reference: str) -> None:
    """The manifest is served with a matching digest and everything it references exists."""
    response = http.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": ACCEPT_MANIFESTS})
    assert response.status_code == 200, (name, reference, response.status_code, response.text)
    digest = response.headers["Docker-Content-Digest"]
    assert sha256_digest(response.content) == digest, (name, reference)
    manifest: dict[str, Any] = json.loads(response.content)
    if manifest.get("mediaType") in (OCI_INDEX, DOCKER_MANIFEST_LIST):
        for child in manifest["manifests"]:
            _check_manifest(http, name, child["digest"])
        return
    for descriptor in [manifest["config"], *manifest["layers"]]:
        head = http.head(f"/v2/{name}/blobs/{descriptor['digest']}")
        assert head.status_code == 200, (name, reference, descriptor, head.status_code)
        assert int(head.headers["Content-Length"]) == descriptor["size"], (name, descriptor)


def _stream_digest(http: httpx.Client, name: str, digest: str) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with http.stream("GET", f"/v2/{name}/blobs/{digest}") as response:
        assert response.status_code == 200, (digest, response.status_code)
        for chunk in response.iter_bytes(MIB):
            hasher.update(chunk)
            size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


def _kill_mid_push(registry: RegistryServer, push: subprocess.Popen[bytes]) -> int:
    """SIGKILL the server once it has read KILL_AFTER_BYTES; return how much it had read."""
    server = psutil.Process(registry.pid)
    baseline = _bytes_read(server)

    def read_enough() -> int:
        read = _bytes_read(server) - baseline
        if read >= KILL_AFTER_BYTES:
            return read
        if push.poll() is not None:
            pytest.fail(f"the push ended (exit {push.returncode}) after the server read {read} B")
        return 0

    read = wait_until(
        read_enough,
        timeout=PUSH_TIMEOUT,
        interval=0.01,
        message=lambda: f"the server read only {_bytes_read(server) - baseline} B",
    )
    assert push.poll() is None, "the push finished before the server could be killed"
    registry.kill()
    return read


def _wait(process: subprocess.Popen[bytes], timeout: float) -> int:
    """The exit code of `process`; past `timeout` it is killed and the wait fails."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{process.args!r} did not exit within {timeout}s after the server died")


def test_sigkill_mid_push_leaves_store_consistent(
    registry: RegistryServer,
    skopeo: Skopeo,
    big_layout: tuple[OciLayout, Image],
    tmp_path: Path,
) -> None:
    layout, image = big_layout
    # Something committed before the crash, which must survive it intact.
    small = small_image(layout, tag="small", seed=21)
    registry.create_repository("e2e/crash-small")
    skopeo(
        "copy", "--preserve-digests", layout.reference("small"), skopeo.ref("e2e/crash-small", "1")
    )

    name = "e2e/crash-big"
    registry.create_repository(name)
    push_args = ("copy", "--preserve-digests", layout.reference("big"), skopeo.ref(name, "1"))
    push = skopeo.popen(*push_args, log=tmp_path / "push-1.log")
    try:
        read_before_kill = _kill_mid_push(registry, push)
        push_code = _wait(push, 120)
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
    assert push_code != 0, (tmp_path / "push-1.log").read_text()

    registry.start()
    with registry.client() as http:
        repositories = _catalog(http)
        assert "e2e/crash-small" in repositories
        for repository in repositories:
            for tag in _tags(http, repository):
                _check_manifest(http, repository, tag)
        small_manifest = http.get(
            "/v2/e2e/crash-small/manifests/1", headers={"Accept": ACCEPT_MANIFESTS}
        )
        assert small_manifest.content == small.manifest
        for digest in small.blob_digests:
            assert _stream_digest(http, "e2e/crash-small", digest)[0] == digest

        # No partial blob is ever visible: each layer is absent, or whole and correct.
        present = []
        for layer in image.layers:
            digest, size = layer.descriptor.digest, layer.descriptor.size
            head = http.head(f"/v2/{name}/blobs/{digest}")
            assert head.status_code in (200, 404), (digest, head.status_code)
            if head.status_code == 200:
                assert int(head.headers["Content-Length"]) == size
                assert _stream_digest(http, name, digest) == (digest, size)
                present.append(size // MIB)
        print(f"killed after {read_before_kill // MIB} MiB; whole layers after restart: {present}")

        retry = skopeo(*push_args, timeout=PUSH_TIMEOUT)
        assert retry.returncode == 0
        pushed = http.get(f"/v2/{name}/manifests/1", headers={"Accept": ACCEPT_MANIFESTS})
        assert pushed.status_code == 200
        assert pushed.headers["Docker-Content-Digest"] == image.digest
        assert pushed.content == image.manifest
        for layer in image.layers:
            digest, size = layer.descriptor.digest, layer.descriptor.size
            assert _stream_digest(http, name, digest) == (digest, size)
        _check_manifest(http, name, "1")


def _upload_offset(http: httpx.Client, location: str) -> int:
    """The upload's current size, from `GET` status (204 with `Range: 0-<last byte>`)."""
    status = http.get(location)
    assert status.status_code == 204, (status.status_code, status.text)
    start, _, end = status.headers["Range"].partition("-")
    assert start == "0", status.headers
    return int(end) + 1


def _patch(http: httpx.Client, location: str, data: bytes, offset: int) -> str:
    response = http.patch(
        location,
        content=data,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(data) - 1}",
        },
    )
    assert response.status_code == 202, (offset, response.status_code, response.text)
    assert response.headers["Range"] == f"0-{offset + len(data) - 1}"
    return response.headers["Location"]


def test_chunked_upload_resumes_after_sigkill(registry: RegistryServer) -> None:
    """A chunked upload survives SIGKILL between PATCHes and during one, and then completes.

    After each crash the upload's status says how much the server kept; the client resumes from
    there, and the committed blob must be exactly the data, whatever was cut off.
    """
    name = "e2e/crash-resume"
    registry.create_repository(name)
    chunk = 8 * MIB
    data = SeededStream(31, 3 * chunk).read()
    digest = sha256_digest(data)

    with registry.client() as http:
        started = http.post(f"/v2/{name}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = _patch(http, started.headers["Location"], data[:chunk], 0)

    # SIGKILL between two PATCHes: the first chunk is kept.
    registry.kill()
    registry.start()
    with registry.client() as http:
        assert _upload_offset(http, location) == chunk

    # SIGKILL while a PATCH is half sent: whatever the server reports kept is what it has.
    half_sent, resume = threading.Event(), threading.Event()

    def cut_off_body() -> Iterator[bytes]:
        yield data[chunk : chunk + chunk // 2]
        half_sent.set()
        resume.wait(30)
        yield data[chunk + chunk // 2 : 2 * chunk]

    def send() -> None:
        with registry.client() as http, contextlib.suppress(httpx.HTTPError):
            http.patch(
                location,
                content=cut_off_body(),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(chunk),
                    "Content-Range": f"{chunk}-{2 * chunk - 1}",
                },
            )

    server = psutil.Process(registry.pid)
    baseline, baseline_written = _bytes_read(server), _bytes_written(server)
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    assert half_sent.wait(30)
    # Mid-PATCH: the server has read the half sent, and written a slice of it to the staging.
    wait_until(
        lambda: _bytes_read(server) - baseline >= chunk // 2,
        timeout=30,
        interval=0.01,
        message="the server never read the first half of the PATCH",
    )
    wait_until(
        lambda: _bytes_written(server) - baseline_written >= MIB,
        timeout=30,
        interval=0.01,
        message="the server never wrote any of the PATCH to its staging",
    )
    registry.kill()
    resume.set()
    sender.join(30)
    registry.start()

    with registry.client() as http:
        offset = _upload_offset(http, location)
        assert chunk <= offset <= chunk + chunk // 2, offset
        print(f"the server kept {offset - chunk} B of the PATCH cut off by SIGKILL")
        location = _patch(http, location, data[offset:], offset)
        separator = "&" if "?" in location else "?"
        done = http.put(f"{location}{separator}digest={digest}")
        assert done.status_code == 201, done.text
        assert done.headers["Docker-Content-Digest"] == digest
        blob = http.get(f"/v2/{name}/blobs/{digest}")
        assert blob.status_code == 200
        assert blob.content == data
