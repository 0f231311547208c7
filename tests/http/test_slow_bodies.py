"""Request bodies that stall are cut off on a live server: raw sockets that send a few bytes of a
PATCH, a manifest PUT or an AWS call and then stop get a 408 and a closed connection, their
bytes are never counted, and 200 of them at once neither grow the server's memory nor slow
another client down. On SQLite and on PostgreSQL; the limits are made small through the
configuration file."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from support.databases import DATABASES, config_file, database_for_server
from support.fixtures import LiveServers
from support.server import RegistryServer
from support.waiting import wait_until

IDLE = 2.0
GRACE = 2.0
SLOW_CONNECTIONS = 200
REPOSITORY = "slow/app"


@pytest.fixture(scope="module", params=DATABASES)
def server(
    request: pytest.FixtureRequest,
    live_servers: LiveServers,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RegistryServer]:
    with database_for_server(request.param) as url:
        config = config_file(
            tmp_path_factory.mktemp("config") / "cargohold.toml",
            url,
            body_idle_timeout_seconds=IDLE,
            body_rate_grace_seconds=GRACE,
            body_min_bytes_per_second=1024,
        )
        options = ("--config", str(config))
        server = live_servers.start(f"slow-{request.param}", extra_args=options)
        server.create_repository(REPOSITORY)
        try:
            yield server
        finally:
            server.stop()


def basic(server: RegistryServer) -> str:
    user, password = server.registry_credentials() or ("", "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def new_upload(client: httpx.Client) -> str:
    response = client.post(f"/v2/{REPOSITORY}/blobs/uploads/")
    assert response.status_code == 202, response.text
    return response.headers["Location"]


def stalled(
    server: RegistryServer, method: str, path: str, headers: dict[str, str]
) -> socket.socket:
    """A connection that sends the request head and three bytes of a 1 MiB body, then nothing."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = [f"{method} {path} HTTP/1.1", f"Host: {server.host}", "Content-Length: 1048576"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"abc")
    return sock


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of what the server answered, read until it closed."""
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_a_stalled_patch_is_cut_off_and_its_bytes_are_not_counted(
    server: RegistryServer,
) -> None:
    with server.client() as client:
        location = new_upload(client)
        began = time.monotonic()
        sock = stalled(server, "PATCH", location, {"Authorization": basic(server)})

        status, headers, body = answer(sock)

        assert status == 408
        assert headers["connection"] == "close"
        assert b"BLOB_UPLOAD_INVALID" in body
        assert time.monotonic() - began < IDLE + GRACE + 5
        # The session is still there, at offset 0: the three bytes were discarded.
        assert client.get(location).headers["Range"] == "0-0"
        data = b"the whole layer"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        done = client.put(location, params={"digest": digest}, content=data)
        assert done.status_code == 201, done.text


def test_a_stalled_manifest_put_and_aws_call_are_cut_off(server: RegistryServer) -> None:
    manifest = stalled(
        server,
        "PUT",
        f"/v2/{REPOSITORY}/manifests/latest",
        {
            "Authorization": basic(server),
            "Content-Type": "application/vnd.oci.image.manifest.v1+json",
        },
    )
    aws = stalled(
        server,
        "POST",
        "/",
        {
            "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.PutImage",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )

    status, _, body = answer(manifest)
    assert (status, b"MANIFEST_INVALID" in body) == (408, True)
    status, headers, body = answer(aws)
    assert (status, b"RequestTimeoutException" in body) == (408, True)
    assert headers["x-amzn-requestid"]


def test_two_hundred_slow_patches_hold_no_memory_and_block_no_one(
    server: RegistryServer,
) -> None:
    process = psutil.Process(server.pid)
    with server.client() as client:
        locations = [new_upload(client) for _ in range(SLOW_CONNECTIONS)]
        assert client.get("/v2/").status_code == 200
        baseline = process.memory_info().rss
        authorization = basic(server)
        socks = [stalled(server, "PATCH", at, {"Authorization": authorization}) for at in locations]

        latencies: list[float] = []
        peak = baseline

        def poll() -> bool:
            nonlocal peak
            began = time.perf_counter()
            assert client.get("/v2/").status_code == 200
            latencies.append(time.perf_counter() - began)
            peak = max(peak, process.memory_info().rss)
            return len(latencies) >= 40 and time.monotonic() - started > GRACE + 1

        started = time.monotonic()
        wait_until(poll, timeout=60, interval=0.05, message="the poller never finished")
        answers = [answer(sock) for sock in socks]

    assert [status for status, _, _ in answers] == [408] * SLOW_CONNECTIONS
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    assert p99 < 0.1, f"GET /v2/ p99 {p99 * 1000:.1f} ms while {SLOW_CONNECTIONS} bodies stalled"
    growth = (peak - baseline) / 2**20
    assert growth < 64, f"the server grew by {growth:.1f} MiB"
    print(f"p99 {p99 * 1000:.1f} ms over {len(latencies)} polls; RSS growth {growth:.1f} MiB")


def test_an_endless_header_is_refused_without_holding_memory(server: RegistryServer) -> None:
    process = psutil.Process(server.pid)
    baseline = process.memory_info().rss
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {server.host}\r\nX-Endless: ".encode())
    sent = 0
    with pytest.raises(OSError):  # the server answers and closes while the header goes on
        for _ in range(64):
            sock.sendall(b"a" * 1024 * 1024)
            sent += 1
    data = sock.recv(65536)
    sock.close()

    assert data.startswith(b"HTTP/1.1 431 ")
    assert sent < 64
    growth = (process.memory_info().rss - baseline) / 2**20
    assert growth < 16, f"the server grew by {growth:.1f} MiB"


def test_a_request_head_that_never_ends_is_answered_408(server: RegistryServer) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    began = time.monotonic()
    sock.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {server.host}\r\nX-Slow: ".encode())

    status, headers, _ = answer(sock)

    assert (status, headers["connection"]) == (408, "close")
    assert IDLE - 0.5 < time.monotonic() - began < IDLE + 5


def test_a_connection_that_never_sends_is_closed(server: RegistryServer) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    began = time.monotonic()

    with sock:
        assert sock.recv(1) == b""

    assert IDLE - 0.5 < time.monotonic() - began < IDLE + 5


def test_a_kept_alive_connection_serves_request_after_request(server: RegistryServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        statuses = [client.get("/v2/").status_code for _ in range(5)]

    assert statuses == [401] * 5
