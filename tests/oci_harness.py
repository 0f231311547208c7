"""What the `/v2/` tests share: the OCI front as an ASGI app, an in-process uvicorn, raw sockets,
and push/pull helpers over an `httpx.AsyncClient`.

The tests drive the OCI front itself (`Node.oci`) with an allow-all gatekeeper, so they prove
the distribution API whatever authentication the composition root puts in front of it; the
gatekeeper is swapped where a test needs 401, 403 or 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.requests import Request

from cargohold.domain.principal import Principal
from cargohold.http.oci import Access, OciFront
from cargohold.ports import StorageDriver
from support.images import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    image_manifest,
)
from support.waiting import wait_until_async

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ACCOUNT = "123456789012"
ACCEPT_ALL = ", ".join(
    [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


class AllowAll:
    """A gatekeeper that lets every caller do everything, as the account root."""

    principal = Principal(
        account_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root", principal_id=ACCOUNT
    )

    async def authenticate(self, request: Request) -> Principal:
        return self.principal

    def registry_id(self, request: Request, principal: Principal) -> str:
        return principal.account_id

    async def authorize(self, request: Request, principal: Principal, access: Access) -> None:
        return None

    def challenge(self) -> str:
        return 'Basic realm="test",service="ecr.amazonaws.com"'


class FrontApp:
    """The OCI front as a bare ASGI app. Unlike the Application it does not turn an unhandled
    exception into a 500, so a bug surfaces in the test as the exception it is."""

    def __init__(self, front: OciFront) -> None:
        self.front = front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.front(request)
        await response(scope, receive, send)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def staging_written(monkeypatch: pytest.MonkeyPatch, storage: StorageDriver) -> asyncio.Event:
    """An event set when the registry next writes part of an upload's body to `storage` (the
    storage its upload service writes to): the request sending that body is then mid-way
    through its append, holding the upload."""
    written = asyncio.Event()
    open_upload = storage.open_upload

    async def watched_open_upload(state: Any, offset: int) -> Any:
        writer = await open_upload(state, offset)
        write = writer.write

        async def watched_write(*args: Any, **kwargs: Any) -> None:
            await write(*args, **kwargs)
            written.set()

        writer.write = watched_write
        return writer

    monkeypatch.setattr(storage, "open_upload", watched_open_upload)
    return written


@contextlib.asynccontextmanager
async def serve(app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> AsyncIterator[int]:
    """Run `app` under uvicorn on a free loopback port, in this event loop; yield the port."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:

        async def up_or_down() -> bool:
            return bool(server.started or task.done())

        await wait_until_async(
            up_or_down, timeout=5, interval=0.01, message="uvicorn did not start"
        )
        if not server.started:
            task.result()  # raises what uvicorn stopped with
            raise RuntimeError("uvicorn stopped while starting")
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(status, headers, body)


async def raw_request(port: int, request: bytes, *, timeout: float = 10.0) -> RawResponse:
    """Send bytes exactly as given (no path normalisation); read the answer until the server
    closes the connection (send `Connection: close`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return parse_response(data)


# -- push and pull ---------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def codes(response: httpx.Response) -> list[str]:
    """The error codes of an OCI error body; asserts the body has the spec's shape."""
    document = response.json()
    assert isinstance(document, dict) and isinstance(document.get("errors"), list), document
    for entry in document["errors"]:
        assert isinstance(entry.get("code"), str) and "message" in entry, entry
    return [entry["code"] for entry in document["errors"]]


def expect_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert code in codes(response), response.text


async def push_blob(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    """A monolithic push (`POST ?digest=`); the digest."""
    digest = sha256(data)
    response = await client.post(
        f"/v2/{name}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return digest


async def start_upload(client: httpx.AsyncClient, name: str) -> str:
    """POST a new session; its Location."""
    response = await client.post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
    assert response.status_code == 202, response.text
    return response.headers["location"]


async def put_manifest(
    client: httpx.AsyncClient, name: str, reference: str, body: bytes, media_type: str
) -> httpx.Response:
    return await client.put(
        f"/v2/{name}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
    )


async def get_manifest(
    client: httpx.AsyncClient, name: str, reference: str, accept: str = ACCEPT_ALL
) -> httpx.Response:
    return await client.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": accept})


@dataclass(frozen=True)
class PushedImage:
    manifest: bytes
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(OCI_MANIFEST, self.digest, len(self.manifest))


async def push_image_blobs(client: httpx.AsyncClient, name: str, seed: str) -> PushedImage:
    """Push a config and two layers made from `seed`; the manifest (not pushed yet)."""
    layers = []
    for i in range(2):
        data = f"layer {i} of {seed}".encode() * 10
        await push_blob(client, name, data)
        layers.append(Descriptor(OCI_LAYER, sha256(data), len(data)))
    config_bytes = canonical_json({"seed": seed, "architecture": "amd64", "os": "linux"})
    await push_blob(client, name, config_bytes)
    config = Descriptor(OCI_CONFIG, sha256(config_bytes), len(config_bytes))
    return PushedImage(image_manifest(config, layers), config, tuple(layers))


async def push_image(
    client: httpx.AsyncClient, name: str, seed: str, reference: str | None = None
) -> PushedImage:
    """Push an image's blobs and its manifest (by `reference`, else by digest)."""
    image = await push_image_blobs(client, name, seed)
    response = await put_manifest(
        client, name, reference or image.digest, image.manifest, OCI_MANIFEST
    )
    assert response.status_code == 201, response.text
    return image


async def assert_serving(client: httpx.AsyncClient, name: str = "health/check") -> None:
    """The registry still answers and still takes and gives back a blob."""
    version = await client.get("/v2/")
    assert version.status_code == 200
    data = json.dumps({"alive": True, "nonce": hashlib.sha256(name.encode()).hexdigest()})
    digest = await push_blob(client, name, data.encode())
    fetched = await client.get(f"/v2/{name}/blobs/{digest}")
    assert fetched.status_code == 200 and fetched.content == data.encode()
