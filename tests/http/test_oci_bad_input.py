"""Bad input and interruptions: each gets its spec error, no partial blob ever becomes visible,
and the registry keeps serving afterwards.

What httpx cannot send (a raw `..` path, a body cut short of its Content-Length, a client that
vanishes mid-upload) goes over real sockets to uvicorn running the same front in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cargohold.app import Node
from cargohold.config import Config
from cargohold.domain.digest import Digest
from cargohold.domain.manifest import MAX_MANIFEST_BYTES
from cargohold.service.paths import blob_key
from oci_harness import (
    AllowAll,
    FrontApp,
    RawResponse,
    assert_serving,
    codes,
    expect_error,
    get_manifest,
    parse_response,
    push_blob,
    push_image,
    push_image_blobs,
    put_manifest,
    raw_request,
    serve,
    sha256,
    staging_written,
    start_upload,
)
from support.images import OCI_INDEX, OCI_MANIFEST, canonical_json
from support.waiting import wait_for_event, wait_until_async

pytestmark = pytest.mark.anyio

NAME = "team/app"
MIB = 1024 * 1024


def upload_path(location: str) -> str:
    return httpx.URL(location).path


async def offset_of(client: httpx.AsyncClient, location: str) -> int:
    status = await client.get(location)
    assert status.status_code == 204, status.text
    end = int(status.headers["range"].split("-")[1])
    return 0 if end == 0 else end + 1  # "0-0" is the registry's answer for nothing received


async def assert_blob_absent(client: httpx.AsyncClient, node: Node, digest: str) -> None:
    assert (await client.head(f"/v2/{NAME}/blobs/{digest}")).status_code == 404
    assert await node.storage.stat(blob_key(Digest.parse(digest))) is None


async def assert_no_uploads_left(node: Node) -> None:
    async with node.store.read() as tx:
        assert await tx.uploads.stale_uploads(float("inf")) == []
    staged = Path(node.config.storage_path) / "_uploads"
    assert list(staged.iterdir()) == []


# -- manifests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"{not json}",
        b"\xff\xfe\x00",
        b"[]",
        b"null",
        b'{"schemaVersion": 2}',
        b'{"schemaVersion": 1, "config": {}}',
        b'{"schemaVersion": 2, "config": {"mediaType": "a/b", "digest": "sha256:x", "size": 1}}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
        b' "config": {"mediaType": "a/b", "digest": "sha256:'
        + b"0" * 64
        + b'", "size": "1"}, "layers": []}',
        b'{"schemaVersion": 2, "mediaType": "text/plain", "layers": []}',
    ],
)
async def test_malformed_manifests(client: httpx.AsyncClient, body: bytes) -> None:
    response = await put_manifest(client, NAME, "bad", body, OCI_MANIFEST)
    expect_error(response, 400, "MANIFEST_INVALID")
    expect_error(await get_manifest(client, NAME, "bad"), 404, "MANIFEST_UNKNOWN")
    await assert_serving(client)


async def test_media_type_contradicting_content_type(client: httpx.AsyncClient) -> None:
    image = await push_image_blobs(client, NAME, "contradiction")
    response = await put_manifest(client, NAME, "x", image.manifest, OCI_INDEX)
    expect_error(response, 400, "MANIFEST_INVALID")
    await assert_serving(client)


async def test_invalid_references(client: httpx.AsyncClient) -> None:
    image = await push_image(client, NAME, "refs", "v1")
    for reference in ("-dash", ".dot", "a" * 129):
        response = await put_manifest(client, NAME, reference, image.manifest, OCI_MANIFEST)
        assert response.status_code == 400, response.text
        assert codes(response)
    for reference in ("sha256:short", "md5:" + "0" * 32, "sha256:" + "G" * 64):
        expect_error(await get_manifest(client, NAME, reference), 400, "DIGEST_INVALID")
        response = await put_manifest(client, NAME, reference, image.manifest, OCI_MANIFEST)
        expect_error(response, 400, "DIGEST_INVALID")
    await assert_serving(client)


async def test_oversized_manifest_is_refused_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put(
        f"/v2/{NAME}/manifests/huge",
        content=b"{" + b" " * (5 * MIB) + b"}",
        headers={"Content-Type": OCI_MANIFEST},
    )
    expect_error(response, 413, "SIZE_INVALID")
    await assert_serving(client)


# -- blobs and uploads -----------------------------------------------------------------------


@pytest.mark.parametrize("path_digest", ["sha256:xyz", "md5:" + "0" * 32, "sha256", "latest"])
async def test_invalid_blob_digests(client: httpx.AsyncClient, path_digest: str) -> None:
    await push_blob(client, NAME, b"exists")
    expect_error(await client.get(f"/v2/{NAME}/blobs/{path_digest}"), 400, "DIGEST_INVALID")
    assert (await client.head(f"/v2/{NAME}/blobs/{path_digest}")).status_code == 400
    expect_error(await client.delete(f"/v2/{NAME}/blobs/{path_digest}"), 400, "DIGEST_INVALID")
    single = await client.post(
        f"/v2/{NAME}/blobs/uploads/", params={"digest": path_digest}, content=b"x"
    )
    expect_error(single, 400, "DIGEST_INVALID")
    location = await start_upload(client, NAME)
    finish = await client.put(location, params={"digest": path_digest}, content=b"x")
    expect_error(finish, 400, "DIGEST_INVALID")
    await assert_serving(client)


async def test_digest_mismatch_on_commit(client: httpx.AsyncClient, node: Node) -> None:
    data = os.urandom(300_000)
    claimed = sha256(b"something else")
    location = await start_upload(client, NAME)
    patched = await client.patch(location, content=data[:100_000])
    assert patched.status_code == 202
    done = await client.put(
        patched.headers["location"], params={"digest": claimed}, content=data[100_000:]
    )
    expect_error(done, 400, "DIGEST_INVALID")
    for digest in (claimed, sha256(data)):
        await assert_blob_absent(client, node, digest)
    # The session is gone with its bytes.
    expect_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    await assert_no_uploads_left(node)
    # Single POST, too.
    single = await client.post(
        f"/v2/{NAME}/blobs/uploads/", params={"digest": claimed}, content=data
    )
    expect_error(single, 400, "DIGEST_INVALID")
    for digest in (claimed, sha256(data)):
        await assert_blob_absent(client, node, digest)
    await assert_no_uploads_left(node)
    await assert_serving(client)


async def test_finish_without_digest(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, NAME)
    await client.patch(location, content=b"abc")
    expect_error(await client.put(location), 400, "DIGEST_INVALID")
    assert await offset_of(client, location) == 3
    assert (await client.put(location, params={"digest": sha256(b"abc")})).status_code == 201


@pytest.mark.parametrize(
    "content_range", ["abc", "0-", "-5", "bytes=a-b", "0-1-2", "1e3-2e3", " ", "0--1"]
)
async def test_malformed_content_range(client: httpx.AsyncClient, content_range: str) -> None:
    location = await start_upload(client, NAME)
    await client.patch(location, content=b"12345", headers={"Content-Range": "0-4"})
    refused = await client.patch(
        location, content=b"67890", headers={"Content-Range": content_range}
    )
    expect_error(refused, 400, "BLOB_UPLOAD_INVALID")
    assert await offset_of(client, location) == 5
    await assert_serving(client)


async def test_content_range_that_does_not_fit(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, NAME)
    await client.patch(location, content=b"12345", headers={"Content-Range": "0-4"})
    backwards = await client.patch(location, content=b"x", headers={"Content-Range": "9-5"})
    expect_error(backwards, 416, "BLOB_UPLOAD_INVALID")
    assert backwards.headers["range"] == "0-4"
    # A range that says 10 bytes for a 5-byte body.
    longer = await client.patch(location, content=b"67890", headers={"Content-Range": "5-14"})
    expect_error(longer, 400, "SIZE_INVALID")
    shorter = await client.patch(location, content=b"67890", headers={"Content-Range": "5-6"})
    expect_error(shorter, 400, "SIZE_INVALID")
    assert await offset_of(client, location) == 5
    done = await client.put(
        location,
        params={"digest": sha256(b"1234567890")},
        content=b"67890",
        headers={"Content-Range": "5-9"},
    )
    assert done.status_code == 201, done.text


@pytest.mark.parametrize(
    "upload_id",
    [
        "00000000-0000-0000-0000-000000000000",
        "garbage",
        "%2e%2e",
        "x" * 1000,
        "5b0e4f36-3c3a-4f8e-8d7e-0a3b0b1f2c3d'; DROP TABLE uploads; --",
    ],
)
async def test_unknown_upload_ids(client: httpx.AsyncClient, upload_id: str) -> None:
    await push_blob(client, NAME, b"repository exists")
    base = f"/v2/{NAME}/blobs/uploads/{upload_id}"
    expect_error(await client.get(base), 404, "BLOB_UPLOAD_UNKNOWN")
    expect_error(await client.patch(base, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    put = await client.put(base, params={"digest": sha256(b"x")}, content=b"x")
    expect_error(put, 404, "BLOB_UPLOAD_UNKNOWN")
    expect_error(await client.delete(base), 404, "BLOB_UPLOAD_UNKNOWN")
    await assert_serving(client)


async def test_an_upload_is_bound_to_its_repository(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, NAME)
    session = upload_path(location).rsplit("/", 1)[1]
    await push_blob(client, "other", b"other exists")
    elsewhere = f"/v2/other/blobs/uploads/{session}"
    expect_error(await client.get(elsewhere), 404, "BLOB_UPLOAD_UNKNOWN")
    expect_error(await client.patch(elsewhere, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    expect_error(await client.delete(elsewhere), 404, "BLOB_UPLOAD_UNKNOWN")
    assert (await client.get(location)).status_code == 204


async def test_body_shorter_than_its_content_length(client: httpx.AsyncClient, node: Node) -> None:
    location = await start_upload(client, NAME)
    await client.patch(location, content=b"start ")
    short = await client.patch(location, content=b"x" * 500, headers={"Content-Length": "1000"})
    expect_error(short, 400, "SIZE_INVALID")
    assert await offset_of(client, location) == 6
    finish = await client.put(
        location,
        params={"digest": sha256(b"start end")},
        content=b"en",
        headers={"Content-Length": "3"},
    )
    expect_error(finish, 400, "SIZE_INVALID")
    await assert_blob_absent(client, node, sha256(b"start end"))
    single = await client.post(
        f"/v2/{NAME}/blobs/uploads/",
        params={"digest": sha256(b"whole")},
        content=b"who",
        headers={"Content-Length": "5"},
    )
    expect_error(single, 400, "SIZE_INVALID")
    await assert_blob_absent(client, node, sha256(b"whole"))
    assert await offset_of(client, location) == 6
    done = await client.put(location, params={"digest": sha256(b"start end")}, content=b"end")
    assert done.status_code == 201, done.text
    await assert_serving(client)


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UPPER", "a" * 300, "x", "a//b", "a/-b", "ab_", "a%20b"])
async def test_invalid_names(client: httpx.AsyncClient, name: str) -> None:
    digest = sha256(b"x")
    for response in (
        await client.post(f"/v2/{name}/blobs/uploads/"),
        await client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=b"x"),
        await client.get(f"/v2/{name}/blobs/{digest}"),
        await client.get(f"/v2/{name}/tags/list"),
        await get_manifest(client, name, "latest"),
        await put_manifest(client, name, "latest", b"{}", OCI_MANIFEST),
        await client.delete(f"/v2/{name}/manifests/latest"),
        await client.get(f"/v2/{name}/referrers/{digest}"),
        await client.get(f"/v2/{name}/blobs/uploads/00000000-0000-0000-0000-000000000000"),
    ):
        expect_error(response, 400, "NAME_INVALID")
    catalog = await client.get("/v2/_catalog")
    assert catalog.json()["repositories"] == []
    await assert_serving(client)


async def test_dot_segments_in_raw_paths(app: FrontApp, client: httpx.AsyncClient) -> None:
    """`..` reaches the registry unnormalised through a real socket; it is a bad name."""
    await push_blob(client, "x/y", b"exists")
    async with serve(app) as port:
        for path in (
            "/v2/../x/tags/list",
            "/v2/x/../y/tags/list",
            "/v2/x/y/../../etc/blobs/uploads/",
            "/v2/%2e%2e/x/tags/list",
            "/v2/./x/manifests/latest",
        ):
            method = "POST" if path.endswith("/uploads/") else "GET"
            response = await raw_request(
                port,
                f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode(),
            )
            assert response.status == 400, (path, response.status, response.body)
            assert b"NAME_INVALID" in response.body, path
        fine = await raw_request(
            port, b"GET /v2/x/y/tags/list HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        assert fine.status == 200
    await assert_serving(client)


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "99999999999999999999999"])
async def test_bad_pagination(client: httpx.AsyncClient, n: str) -> None:
    await push_image(client, NAME, "pages", "v1")
    for path in (f"/v2/{NAME}/tags/list", "/v2/_catalog"):
        response = await client.get(path, params={"n": n})
        if n.isdigit():  # a huge n is a valid request for everything
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 400, response.text
            assert codes(response)
    await assert_serving(client)


# -- interruptions over real sockets ---------------------------------------------------------


async def patch_until_accepted(
    client: httpx.AsyncClient, location: str, data: bytes
) -> httpx.Response:
    """PATCH the rest of `data` from the offset the registry reports. The registry may not
    have noticed the vanished client yet (its append still holds the session), which it says
    with 416: a real client asks for the status again and retries."""

    async def attempt() -> httpx.Response | None:
        offset = await offset_of(client, location)
        response = await client.patch(
            location,
            content=data[offset:],
            headers={"Content-Range": f"{offset}-{len(data) - 1}"},
        )
        return None if response.status_code == 416 else response

    return await wait_until_async(
        attempt, interval=0.1, message="the upload stayed busy after its client went away"
    )


@contextlib.asynccontextmanager
async def socket_client(app: FrontApp) -> AsyncIterator[tuple[int, httpx.AsyncClient]]:
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        yield port, http


async def test_client_disconnects_mid_patch(
    app: FrontApp, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(6 * MIB + 123)
    async with socket_client(app) as (port, http):
        location = await start_upload(http, NAME)
        first = await http.patch(
            location, content=data[:MIB], headers={"Content-Range": f"0-{MIB - 1}"}
        )
        assert first.status_code == 202
        location = first.headers["location"]
        written = staging_written(monkeypatch, node.storage)

        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"PATCH {upload_path(location)} HTTP/1.1\r\nHost: t\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {4 * MIB}\r\n"
            f"Content-Range: {MIB}-{5 * MIB - 1}\r\n\r\n".encode()
        )
        writer.write(data[MIB : 3 * MIB])  # half of what it announced
        await writer.drain()
        await wait_for_event(written, message="the server never wrote the PATCH's first bytes")
        writer.transport.abort()  # the client vanishes, no FIN-wait, no more bytes

        assert await offset_of(http, location) == MIB
        resumed = await patch_until_accepted(http, location, data)
        assert resumed.status_code == 202, resumed.text
        assert resumed.headers["range"] == f"0-{len(data) - 1}"
        done = await http.put(resumed.headers["location"], params={"digest": sha256(data)})
        assert done.status_code == 201, done.text
        assert done.headers["docker-content-digest"] == sha256(data)
        fetched = await http.get(f"/v2/{NAME}/blobs/{sha256(data)}")
        assert fetched.content == data
        await assert_serving(http)
    await assert_no_uploads_left(node)


async def test_client_disconnects_mid_single_post(
    app: FrontApp, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 * MIB)
    written = staging_written(monkeypatch, node.storage)
    async with socket_client(app) as (port, http):
        await http.get("/v2/")
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST /v2/{NAME}/blobs/uploads/?digest={sha256(data)} HTTP/1.1\r\nHost: t\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
        )
        writer.write(data[: MIB + 5])
        await writer.drain()
        await wait_for_event(written, message="the server never wrote the POST's first bytes")
        writer.transport.abort()

        async def cleaned_up() -> bool:
            async with node.store.read() as tx:
                return not await tx.uploads.stale_uploads(float("inf"))

        await wait_until_async(
            cleaned_up, message="the server never cleaned up after the vanished client"
        )
        assert (await http.head(f"/v2/{NAME}/blobs/{sha256(data)}")).status_code == 404
        await assert_serving(http)
    await assert_no_uploads_left(node)
    assert await node.storage.stat(blob_key(Digest.parse(sha256(data)))) is None


async def test_body_cut_short_over_a_socket(app: FrontApp, node: Node) -> None:
    """The client announces 100 000 bytes, sends 40 000 and closes its side."""
    data = os.urandom(100_000)
    async with socket_client(app) as (port, http):
        location = await start_upload(http, NAME)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"PATCH {upload_path(location)} HTTP/1.1\r\nHost: t\r\n"
            f"Content-Length: {len(data)}\r\nContent-Range: 0-{len(data) - 1}\r\n\r\n".encode()
            + data[:40_000]
        )
        await writer.drain()
        writer.write_eof()
        with contextlib.suppress(ConnectionError, TimeoutError):
            answer = await asyncio.wait_for(reader.read(-1), 10)
            # If an answer comes at all, it is an error, never an accepted chunk.
            assert not answer.startswith(b"HTTP/1.1 202"), answer[:200]
        writer.close()
        resumed = await patch_until_accepted(http, location, data)
        assert resumed.status_code == 202
        done = await http.put(resumed.headers["location"], params={"digest": sha256(data)})
        assert done.status_code == 201, done.text
        assert (await http.get(f"/v2/{NAME}/blobs/{sha256(data)}")).content == data
        await assert_serving(http)


async def test_manifest_body_cut_short(app: FrontApp, client: httpx.AsyncClient) -> None:
    image = await push_image_blobs(client, NAME, "cut")
    async with socket_client(app) as (port, http):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"PUT /v2/{NAME}/manifests/cut HTTP/1.1\r\nHost: t\r\nContent-Type: {OCI_MANIFEST}\r\n"
            f"Content-Length: {len(image.manifest)}\r\n\r\n".encode()
            + image.manifest[: len(image.manifest) // 2]
        )
        await writer.drain()
        writer.write_eof()
        with contextlib.suppress(ConnectionError, TimeoutError):
            answer = await asyncio.wait_for(reader.read(-1), 10)
            assert not answer.startswith(b"HTTP/1.1 201"), answer[:200]
        writer.close()
        expect_error(await get_manifest(http, NAME, "cut"), 404, "MANIFEST_UNKNOWN")
        await assert_serving(http)


# -- a restart between two PATCHes -----------------------------------------------------------


async def test_chunked_upload_survives_a_restart(config: Config) -> None:
    data = os.urandom(2 * MIB + 17)

    async def opened() -> tuple[Node, httpx.AsyncClient]:
        node = await Node.open(config)
        node.oci.gatekeeper = AllowAll()
        transport = httpx.ASGITransport(app=FrontApp(node.oci))
        return node, httpx.AsyncClient(transport=transport, base_url="http://registry.test")

    node, http = await opened()
    try:
        location = await start_upload(http, NAME)
        first = await http.patch(
            location, content=data[:MIB], headers={"Content-Range": f"0-{MIB - 1}"}
        )
        assert first.status_code == 202
        location = first.headers["location"]
    finally:
        await http.aclose()
        await node.close()

    node, http = await opened()
    try:
        assert await offset_of(http, location) == MIB
        second = await http.patch(
            location, content=data[MIB:], headers={"Content-Range": f"{MIB}-{len(data) - 1}"}
        )
        assert second.status_code == 202, second.text
        done = await http.put(second.headers["location"], params={"digest": sha256(data)})
        assert done.status_code == 201, done.text
        assert (await http.get(f"/v2/{NAME}/blobs/{sha256(data)}")).content == data
        image = canonical_json({"restarted": True})
        assert await push_blob(http, NAME, image) == sha256(image)
    finally:
        await http.aclose()
        await node.close()


async def test_client_disconnects_mid_download(app: FrontApp, client: httpx.AsyncClient) -> None:
    data = os.urandom(16 * MIB)
    digest = await push_blob(client, NAME, data)
    async with socket_client(app) as (port, http):
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /v2/{NAME}/blobs/{digest} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            await writer.drain()
            assert (await reader.read(65536)).startswith(b"HTTP/1.1 200")
            writer.transport.abort()
        fetched = await http.get(f"/v2/{NAME}/blobs/{digest}")
        assert fetched.status_code == 200 and fetched.content == data
        await assert_serving(http)


async def test_heads_and_errors_over_one_kept_alive_connection(
    app: FrontApp, client: httpx.AsyncClient
) -> None:
    """What clients meet on a real connection: HEAD answers carry the length but no body, and
    an error that leaves a request body unread does not derail the next request."""
    image = await push_image(client, NAME, "keepalive", "v1")
    layer = image.layers[0]
    accept = f"Accept: {OCI_MANIFEST}\r\n"
    requests = [
        (f"HEAD /v2/{NAME}/manifests/v1 HTTP/1.1\r\nHost: t\r\n{accept}\r\n", True),
        (f"HEAD /v2/{NAME}/blobs/{layer.digest} HTTP/1.1\r\nHost: t\r\n\r\n", True),
        (
            f"PATCH /v2/{NAME}/blobs/uploads/garbage HTTP/1.1\r\nHost: t\r\n"
            "Content-Length: 5\r\n\r\nhello",
            False,
        ),
        (
            f"PUT /v2/{NAME}/manifests/big HTTP/1.1\r\nHost: t\r\n"
            f"Content-Length: {MAX_MANIFEST_BYTES + 1}\r\n\r\n{{",
            False,
        ),
    ]
    answers = []
    async with serve(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request, is_head in requests[:3]:
                writer.write(request.encode())
                await writer.drain()
                answers.append(await read_one_response(reader, head=is_head))
            writer.write(
                f"GET /v2/{NAME}/manifests/v1 HTTP/1.1\r\nHost: t\r\n{accept}\r\n".encode()
            )
            await writer.drain()
            answers.append(await read_one_response(reader, head=False))
            # A manifest announced too big is refused without reading it; the connection may
            # then be closed, but the answer comes first.
            writer.write(requests[3][0].encode())
            await writer.drain()
            answers.append(await read_one_response(reader, head=False))
        finally:
            writer.close()
    head_manifest, head_blob, unknown, manifest, too_big = answers
    assert head_manifest.status == 200 and head_manifest.body == b""
    assert head_manifest.headers["content-length"] == str(len(image.manifest))
    assert head_manifest.headers["docker-content-digest"] == image.digest
    assert head_manifest.headers["content-type"] == OCI_MANIFEST
    assert head_blob.status == 200 and head_blob.body == b""
    assert head_blob.headers["content-length"] == str(layer.size)
    assert unknown.status == 404 and b"BLOB_UPLOAD_UNKNOWN" in unknown.body
    assert manifest.status == 200 and manifest.body == image.manifest
    assert too_big.status == 413 and b"SIZE_INVALID" in too_big.body


async def read_one_response(reader: asyncio.StreamReader, *, head: bool) -> RawResponse:
    """One response off a kept-alive connection, framed by its Content-Length."""
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    response = parse_response(raw)
    length = 0 if head else int(response.headers.get("content-length", "0"))
    response.body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
    return response
