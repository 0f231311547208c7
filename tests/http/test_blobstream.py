"""Blob GETs on the s3 driver, through a real server on SeaweedFS: with `redirect` a 307 to a
presigned URL of the store (and GetDownloadUrlForLayer answers such a URL), HEAD from the node;
without it the node streams, `Range` included."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.seaweed import Seaweed, write_config
from support.server import RegistryServer
from support.v2 import TinyImage, push_blob, push_image

MIB = 1024 * 1024


def s3_server(
    tmp_path_factory: pytest.TempPathFactory, seaweed: Seaweed, *, redirect: bool
) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("redirect" if redirect else "stream")
    storage = seaweed.storage_settings(seaweed.new_bucket(), prefix="registry") | {
        "redirect": redirect
    }
    config = write_config(root / "cargohold.toml", storage)
    server = RegistryServer(
        root / "data", root / "server.log", extra_args=("--config", str(config))
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redirecting(
    tmp_path_factory: pytest.TempPathFactory, seaweed: Seaweed
) -> Iterator[RegistryServer]:
    yield from s3_server(tmp_path_factory, seaweed, redirect=True)


@pytest.fixture(scope="module")
def streaming(
    tmp_path_factory: pytest.TempPathFactory, seaweed: Seaweed
) -> Iterator[RegistryServer]:
    yield from s3_server(tmp_path_factory, seaweed, redirect=False)


def pushed_image(server: RegistryServer, name: str) -> TinyImage:
    """An image, so that its layer is one ECR hands out download URLs for."""
    server.create_repository(name)
    image = TinyImage.make(name)
    with server.client() as client:
        answer = push_image(client, name, "1", image)
        assert answer.status_code == 201, answer.text
    return image


def pushed(server: RegistryServer, name: str, data: bytes) -> str:
    server.create_repository(name)
    with server.client() as client:
        answer = push_blob(client, name, data)
        assert answer.status_code == 201, answer.text
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_blob_get_redirects_to_the_store(redirecting: RegistryServer, seaweed: Seaweed) -> None:
    data = os.urandom(3 * MIB + 5)
    digest = pushed(redirecting, "redirected", data)
    with redirecting.client() as client:
        head = client.head(f"/v2/redirected/blobs/{digest}")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(data))
        answer = client.get(f"/v2/redirected/blobs/{digest}")
    assert answer.status_code == 307
    location = answer.headers["location"]
    assert location.startswith(seaweed.endpoint + "/")
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=600" in location
    # The URL carries its own authorization: no registry credentials, and only this object.
    fetched = httpx.get(location)
    assert fetched.status_code == 200 and fetched.content == data
    assert httpx.get(location.replace(digest.split(":")[1], "0" * 64)).status_code == 403


def test_get_download_url_for_layer_answers_a_url_of_the_store(
    redirecting: RegistryServer, seaweed: Seaweed
) -> None:
    image = pushed_image(redirecting, "layer-url")
    digest, data = image.layer_digest, image.layer
    answer = redirecting.ecr_client().get_download_url_for_layer(
        repositoryName="layer-url", layerDigest=digest
    )
    assert answer["layerDigest"] == digest
    assert answer["downloadUrl"].startswith(seaweed.endpoint + "/")
    assert httpx.get(answer["downloadUrl"]).content == data


def test_a_blob_get_streams_through_the_node(streaming: RegistryServer) -> None:
    data = os.urandom(5 * MIB + 123)
    digest = pushed(streaming, "streamed", data)
    with streaming.client() as client:
        whole = client.get(f"/v2/streamed/blobs/{digest}")
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["docker-content-digest"] == digest
        part = client.get(f"/v2/streamed/blobs/{digest}", headers={"Range": "bytes=1000-2999"})
        assert part.status_code == 206 and part.content == data[1000:3000]
        assert part.headers["content-range"] == f"bytes 1000-2999/{len(data)}"
        tail = client.get(f"/v2/streamed/blobs/{digest}", headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        beyond = client.get(
            f"/v2/streamed/blobs/{digest}", headers={"Range": f"bytes={len(data)}-"}
        )
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{len(data)}"
        ignored = client.get(f"/v2/streamed/blobs/{digest}", headers={"Range": "lines=1-2"})
        assert ignored.status_code == 200 and ignored.content == data


def peak_rss(pid: int) -> int:
    """The process's resident-set high-water mark (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_streaming_a_blob_never_holds_it_in_memory(streaming: RegistryServer) -> None:
    data = os.urandom(96 * MIB)
    digest = pushed(streaming, "memory", data)
    before = peak_rss(streaming.pid)
    hasher = hashlib.sha256()
    with streaming.client() as client, client.stream("GET", f"/v2/memory/blobs/{digest}") as got:
        assert got.status_code == 200
        for chunk in got.iter_bytes():
            hasher.update(chunk)
    assert "sha256:" + hasher.hexdigest() == digest
    assert peak_rss(streaming.pid) - before < 32 * MIB


def test_get_download_url_without_redirect_is_the_registrys_own(
    streaming: RegistryServer,
) -> None:
    image = pushed_image(streaming, "own-url")
    digest, data = image.layer_digest, image.layer
    answer = streaming.ecr_client().get_download_url_for_layer(
        repositoryName="own-url", layerDigest=digest
    )
    assert answer["downloadUrl"].startswith(streaming.url + "/_download/")
    assert httpx.get(answer["downloadUrl"]).content == data


def test_a_chunked_upload_of_many_parts_is_verified_and_served(streaming: RegistryServer) -> None:
    """PATCH chunks below S3's part size, committed through the multipart upload."""
    streaming.create_repository("chunked")
    data = os.urandom(19 * MIB + 7)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with streaming.client() as client:
        started = client.post("/v2/chunked/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["location"]
        offset = 0
        for size in (3 * MIB, 7 * MIB, 1, 9 * MIB + 6):
            chunk = data[offset : offset + size]
            answer = client.patch(
                location,
                content=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + size - 1}",
                },
            )
            assert answer.status_code == 202, answer.text
            location = answer.headers["location"]
            offset += size
        wrong = client.put(location, params={"digest": "sha256:" + "0" * 64})
        assert wrong.status_code == 400 and wrong.json()["errors"][0]["code"] == "DIGEST_INVALID"
        assert client.head(f"/v2/chunked/blobs/sha256:{'0' * 64}").status_code == 404
    # The wrong digest ended the session: the right one needs the bytes again.
    with streaming.client() as client:
        answer = client.post(
            "/v2/chunked/blobs/uploads/",
            params={"digest": digest},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert answer.status_code == 201
        got = client.get(f"/v2/chunked/blobs/{digest}")
        assert hashlib.sha256(got.content).hexdigest() == digest.split(":")[1]
