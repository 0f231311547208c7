"""Many clients at once: the same blob, the same tag, the same upload, a new repository.

Every test runs on SQLite and on PostgreSQL, over ASGI and over real sockets to uvicorn, and ends
by checking the whole store: every tag names a manifest that exists, every blob row has its bytes
at its key with the digest it claims, and no upload or staged byte is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest
import sqlalchemy as sa

from cargohold.app import Node
from cargohold.domain.digest import Digest
from cargohold.metadata.schema import blobs, manifests, repository_blobs, tags
from cargohold.service.paths import blob_key
from oci_harness import (
    FrontApp,
    PushedImage,
    get_manifest,
    push_image,
    push_image_blobs,
    put_manifest,
    serve,
    sha256,
    staging_written,
    start_upload,
)
from support.images import OCI_MANIFEST
from support.waiting import wait_for_event

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]

NAME = "team/app"
MIB = 1024 * 1024
CLIENTS = 12

Transport = Callable[[], contextlib.AbstractAsyncContextManager[list[httpx.AsyncClient]]]


@pytest.fixture(params=["asgi", "socket"])
def clients(request: pytest.FixtureRequest, app: FrontApp) -> Transport:
    """A factory of CLIENTS independent clients, all over ASGI or all over real sockets."""

    @contextlib.asynccontextmanager
    async def make() -> AsyncIterator[list[httpx.AsyncClient]]:
        async with contextlib.AsyncExitStack() as stack:
            if request.param == "asgi":
                transport = httpx.ASGITransport(app=app)
                base = "http://registry.test"
                made = [
                    await stack.enter_async_context(
                        httpx.AsyncClient(transport=transport, base_url=base, timeout=60)
                    )
                    for _ in range(CLIENTS)
                ]
            else:
                port = await stack.enter_async_context(serve(app))
                base = f"http://127.0.0.1:{port}"
                made = [
                    await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=60))
                    for _ in range(CLIENTS)
                ]
            yield made

    return make


async def gather(*calls: Awaitable[httpx.Response]) -> list[httpx.Response]:
    return list(await asyncio.gather(*calls))


async def assert_consistent(node: Node) -> None:
    """The store after the storm: no dangling tag, no blob row without its exact bytes, no
    upload or staged file left over."""
    async with node.store.read() as tx:
        conn = tx.conn
        dangling = await conn.execute(
            sa.select(tags.c.name).where(~sa.exists().where(manifests.c.id == tags.c.manifest_id))
        )
        assert list(dangling) == []
        unlinked = await conn.execute(
            sa.select(repository_blobs.c.digest).where(
                ~sa.exists().where(blobs.c.digest == repository_blobs.c.digest)
            )
        )
        assert list(unlinked) == []
        rows = list(await conn.execute(sa.select(blobs.c.digest, blobs.c.size)))
        assert await tx.uploads.stale_uploads(float("inf")) == []
    for digest_text, size in rows:
        digest = Digest.parse(digest_text)
        info = await node.storage.stat(blob_key(digest))
        assert info is not None and info.size == size, digest_text
        hasher = hashlib.new(digest.algorithm)
        async for chunk in node.storage.read(blob_key(digest)):
            hasher.update(chunk)
        assert hasher.hexdigest() == digest.hex, f"bytes at {digest_text} do not match it"
    staged = Path(node.config.storage_path) / "_uploads"
    assert list(staged.iterdir()) == []


# -- one blob, many pushers ------------------------------------------------------------------


async def push_monolithic(http: httpx.AsyncClient, data: bytes) -> httpx.Response:
    return await http.post(
        f"/v2/{NAME}/blobs/uploads/", params={"digest": sha256(data)}, content=data
    )


async def push_post_put(http: httpx.AsyncClient, data: bytes) -> httpx.Response:
    location = await start_upload(http, NAME)
    return await http.put(location, params={"digest": sha256(data)}, content=data)


async def push_chunked(http: httpx.AsyncClient, data: bytes) -> httpx.Response:
    location = await start_upload(http, NAME)
    third = len(data) // 3
    for start, end in ((0, third), (third, 2 * third)):
        response = await http.patch(
            location, content=data[start:end], headers={"Content-Range": f"{start}-{end - 1}"}
        )
        assert response.status_code == 202, response.text
        location = response.headers["location"]
    return await http.put(location, params={"digest": sha256(data)}, content=data[2 * third :])


async def test_same_blob_from_many_clients(clients: Transport, node: Node) -> None:
    data = os.urandom(2 * MIB + 99)
    ways = (push_monolithic, push_post_put, push_chunked)
    async with clients() as https:
        responses = await gather(*(ways[i % 3](http, data) for i, http in enumerate(https)))
        for response in responses:
            assert response.status_code == 201, response.text
            assert response.headers["docker-content-digest"] == sha256(data)
        pulls = await gather(*(http.get(f"/v2/{NAME}/blobs/{sha256(data)}") for http in https))
        assert all(p.status_code == 200 and p.content == data for p in pulls)
    await assert_consistent(node)


async def test_distinct_blobs_from_many_clients(clients: Transport, node: Node) -> None:
    datas = [os.urandom(300_000 + i) for i in range(CLIENTS)]
    async with clients() as https:
        responses = await gather(
            *(push_chunked(http, data) for http, data in zip(https, datas, strict=True))
        )
        assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
        for http, data in zip(https, datas, strict=True):
            assert (await http.get(f"/v2/{NAME}/blobs/{sha256(data)}")).content == data
    await assert_consistent(node)


# -- one tag, many manifests -----------------------------------------------------------------


async def test_same_tag_from_many_clients(clients: Transport, node: Node) -> None:
    async with clients() as https:
        images = [await push_image_blobs(https[0], NAME, f"image {i}") for i in range(CLIENTS)]
        for _round in range(3):
            responses = await gather(
                *(
                    put_manifest(http, NAME, "latest", image.manifest, OCI_MANIFEST)
                    for http, image in zip(https, images, strict=True)
                )
            )
            assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
            latest = await get_manifest(https[0], NAME, "latest")
            assert latest.status_code == 200
            assert latest.content in [image.manifest for image in images]
            assert latest.headers["docker-content-digest"] == sha256(latest.content)
            for image in images:
                by_digest = await get_manifest(https[1], NAME, image.digest)
                assert by_digest.content == image.manifest
            listing = await https[2].get(f"/v2/{NAME}/tags/list")
            assert listing.json()["tags"] == ["latest"]
    await assert_consistent(node)


async def test_same_manifest_from_many_clients(clients: Transport, node: Node) -> None:
    async with clients() as https:
        image = await push_image_blobs(https[0], NAME, "shared")
        responses = await gather(
            *(
                put_manifest(http, NAME, f"t{i}", image.manifest, OCI_MANIFEST)
                for i, http in enumerate(https)
            )
        )
        assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
        assert {r.headers["docker-content-digest"] for r in responses} == {image.digest}
        listing = (await https[0].get(f"/v2/{NAME}/tags/list")).json()["tags"]
        assert listing == sorted(f"t{i}" for i in range(CLIENTS))
    async with node.store.read() as tx:
        repository = await tx.repositories.get_repository(node.config.account_id, NAME)
        assert repository is not None
        assert await tx.manifests.count_manifests(repository.id) == 1
    await assert_consistent(node)


async def test_tag_pushes_racing_manifest_deletes(clients: Transport, node: Node) -> None:
    """Moving a tag while the manifests it moves between are deleted: the tag ends on a manifest
    that exists, or nowhere."""
    async with clients() as https:
        images: list[PushedImage] = [
            await push_image_blobs(https[0], NAME, f"racing {i}") for i in range(4)
        ]
        for _round in range(4):
            for image in images:
                await put_manifest(https[0], NAME, image.digest, image.manifest, OCI_MANIFEST)
            calls: list[Awaitable[httpx.Response]] = []
            for i, http in enumerate(https):
                image = images[i % len(images)]
                if i % 3 == 2:
                    calls.append(http.delete(f"/v2/{NAME}/manifests/{image.digest}"))
                else:
                    calls.append(put_manifest(http, NAME, "moving", image.manifest, OCI_MANIFEST))
            responses = await gather(*calls)
            for response in responses:
                # A push may lose to the delete of what it pushed, never with a server error.
                assert response.status_code in (201, 202, 404), response.text
            latest = await get_manifest(https[0], NAME, "moving")
            assert latest.status_code in (200, 404), latest.text
            if latest.status_code == 200:
                assert sha256(latest.content) == latest.headers["docker-content-digest"]
                by_digest = await get_manifest(https[0], NAME, sha256(latest.content))
                assert by_digest.status_code == 200
            await assert_consistent(node)


# -- one upload, many requests ---------------------------------------------------------------


async def test_same_chunk_from_many_clients(clients: Transport, node: Node) -> None:
    data = os.urandom(MIB)
    async with clients() as https:
        location = await start_upload(https[0], NAME)
        responses = await gather(
            *(
                http.patch(location, content=data, headers={"Content-Range": f"0-{MIB - 1}"})
                for http in https
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(202) == 1, statuses
        assert set(statuses) <= {202, 416, 400}, [r.text for r in responses]
        status = await https[0].get(location)
        assert status.headers["range"] == f"0-{MIB - 1}"
        done = await https[1].put(location, params={"digest": sha256(data)})
        assert done.status_code == 201, done.text
        assert (await https[2].get(f"/v2/{NAME}/blobs/{sha256(data)}")).content == data
    await assert_consistent(node)


async def test_closing_an_upload_while_a_chunk_streams(
    clients: Transport, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PUT that closes an upload must not commit bytes a PATCH is still writing."""
    head = b"A" * 1000
    release = anyio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"B" * (MIB + 1)
        await release.wait()
        yield b"C" * 1000

    async with clients() as https:
        location = await start_upload(https[0], NAME)
        assert (await https[0].patch(location, content=head)).status_code == 202
        written = staging_written(monkeypatch, node.storage)
        outcome: dict[str, httpx.Response] = {}

        async def patch() -> None:
            outcome["patch"] = await https[1].patch(location, content=slow())

        async with anyio.create_task_group() as group:
            group.start_soon(patch)
            await wait_for_event(written, message="the PATCH never wrote its first slice")
            outcome["put"] = await https[2].put(location, params={"digest": sha256(head)})
            release.set()
        whole = head + b"B" * (MIB + 1) + b"C" * 1000
        if outcome["put"].status_code == 201:
            # Had the close won, the chunk must have been refused and the blob be the head.
            assert outcome["patch"].status_code >= 400
            assert (await https[0].get(f"/v2/{NAME}/blobs/{sha256(head)}")).content == head
        else:
            assert outcome["put"].status_code == 416, outcome["put"].text
            assert outcome["patch"].status_code == 202, outcome["patch"].text
            done = await https[0].put(location, params={"digest": sha256(whole)})
            assert done.status_code == 201, done.text
            assert (await https[0].get(f"/v2/{NAME}/blobs/{sha256(whole)}")).content == whole
        assert (await https[0].head(f"/v2/{NAME}/blobs/{sha256(head)}")).status_code in (200, 404)
    await assert_consistent(node)


# -- a new repository ------------------------------------------------------------------------


async def test_first_pushes_to_new_repositories(clients: Transport, node: Node) -> None:
    async with clients() as https:
        for round_ in range(3):
            name = f"fresh/repo{round_}"
            responses = await gather(*(start_upload_response(http, name) for http in https))
            assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
            images = await asyncio.gather(
                *(push_image(http, name, f"{round_}-{i}", f"t{i}") for i, http in enumerate(https))
            )
            listing = (await https[0].get(f"/v2/{name}/tags/list")).json()["tags"]
            assert listing == sorted(f"t{i}" for i in range(CLIENTS))
            assert len(images) == CLIENTS
            for response in responses:
                await https[0].delete(response.headers["location"])
        catalog = (await https[0].get("/v2/_catalog")).json()["repositories"]
        assert catalog == [f"fresh/repo{i}" for i in range(3)]
    await assert_consistent(node)


async def start_upload_response(http: httpx.AsyncClient, name: str) -> httpx.Response:
    return await http.post(f"/v2/{name}/blobs/uploads/")
