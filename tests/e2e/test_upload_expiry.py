"""Upload sessions expire on a running server, on SQLite and PostgreSQL: sessions left behind
by `/v2/` clients, by the ECR layer API and by a client killed mid-PATCH, and staged bytes no
session names, all go once idle for `upload_expiry_seconds`, leaving the data directory as it
was; afterwards the sessions answer BLOB_UPLOAD_UNKNOWN and UploadNotFoundException. Open
sessions per repository are bounded (`max_open_uploads`): 429 TOOMANYREQUESTS on `/v2/`,
LimitExceededException on InitiateLayerUpload. Both limits are set through CARGOHOLD_*
variables, as an operator would."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import sqlite3
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from botocore.exceptions import ClientError

from support.server import RegistryServer
from support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MIB = 1024 * 1024
EXPIRY_SECONDS = 6
MAX_OPEN = 3
NAME = "app"
ZERO_DIGEST = "sha256:" + "0" * 64


class ConfiguredServer(RegistryServer):
    """A server (and its `admin credentials`) run with CARGOHOLD_* variables of the test's."""

    def __init__(
        self, root: Path, environment: dict[str, str], extra_args: tuple[str, ...] = ()
    ) -> None:
        super().__init__(root / "data", root / "server.log", extra_args=extra_args)
        self.environment = environment

    def _env(self) -> dict[str, str]:
        env = super()._env()
        env.update(self.environment)
        return env


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'metadata.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def serve(
    root: Path, database: str, extra_args: tuple[str, ...] = (), **settings: int
) -> Iterator[ConfiguredServer]:
    environment = {"CARGOHOLD_DATABASE_URL": database}
    environment.update({f"CARGOHOLD_{key.upper()}": str(value) for key, value in settings.items()})
    server = ConfiguredServer(root, environment, extra_args)
    server.start()
    try:
        yield server
    finally:
        code = server.stop()
        assert code in (0, -15), f"the server exited with {code}\n{server.log_tail()}"


@pytest.fixture
def expiring(tmp_path: Path, database: str) -> Iterator[ConfiguredServer]:
    yield from serve(tmp_path, database, upload_expiry_seconds=EXPIRY_SECONDS)


@pytest.fixture
def bounded(tmp_path: Path, database: str) -> Iterator[ConfiguredServer]:
    yield from serve(tmp_path, database, max_open_uploads=MAX_OPEN)


@pytest.fixture
def expiring_workers(tmp_path: Path, database: str) -> Iterator[ConfiguredServer]:
    yield from serve(tmp_path, database, ("--workers", "3"), upload_expiry_seconds=EXPIRY_SECONDS)


def disk_usage(data_dir: Path) -> int:
    """Bytes the data directory's files take on disk, but the SQLite database's: it keeps the
    pages deleted rows free for its next rows, and its log grows with every write."""
    total = 0
    for directory, _, files in os.walk(data_dir):
        for name in files:
            if not name.startswith("metadata.db"):
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total


def query(database: str, sql: str) -> list[tuple[Any, ...]]:
    if database.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database.removeprefix("sqlite:///"))) as conn:
            return list(conn.execute(sql).fetchall())
    with psycopg.connect(database) as conn:
        return list(conn.execute(sql).fetchall())


def upload_rows(database: str) -> int:
    return int(query(database, "SELECT count(*) FROM uploads")[0][0])


def start_upload(http: httpx.Client, name: str = NAME) -> httpx.Response:
    return http.post(f"/v2/{name}/blobs/uploads/")


def kill_mid_patch(server: RegistryServer, location: str, staging: Path) -> None:
    """PATCH 8 MiB, send half, and reset the connection, as a client killed mid-push would."""
    user, password = server.registry_credentials() or ("", "")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    head = (
        f"PATCH {location} HTTP/1.1\r\nHost: {server.host}\r\nAuthorization: Basic {basic}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {8 * MIB}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head.encode() + os.urandom(4 * MIB))
        wait_until(
            lambda: staging.stat().st_size >= 3 * MIB,
            message="the server never staged the PATCH's first bytes",
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code


def client_error(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    code: str = caught.value.response["Error"]["Code"]
    return code


def test_expired_sessions_leave_the_data_directory_as_it_was(
    expiring: ConfiguredServer, database: str
) -> None:
    server = expiring
    server.create_repository(NAME)
    ecr = server.ecr_client()
    staging_area = server.data_dir / "storage" / "_uploads"
    with server.client() as http:
        assert http.get("/v2/").status_code == 200
        baseline = disk_usage(server.data_dir)

        locations = []
        for size in (1 * MIB, 2 * MIB, 3 * MIB):
            location = start_upload(http).headers["Location"]
            assert http.patch(location, content=os.urandom(size)).status_code == 202
            locations.append(location)
        killed = start_upload(http).headers["Location"]
        kill_mid_patch(server, killed, staging_area / killed.rsplit("/", 1)[1])
        layer = ecr.initiate_layer_upload(repositoryName=NAME)["uploadId"]
        ecr.upload_layer_part(
            repositoryName=NAME,
            uploadId=layer,
            partFirstByte=0,
            partLastByte=MIB - 1,
            layerPartBlob=os.urandom(MIB),
        )
        (staging_area / str(uuid.uuid4())).write_bytes(os.urandom(MIB))  # a crash's leftover

        assert http.get(locations[0]).status_code == 204
        assert disk_usage(server.data_dir) >= baseline + 10 * MIB
        assert upload_rows(database) == 5

        wait_until(
            lambda: disk_usage(server.data_dir) == baseline,
            timeout=EXPIRY_SECONDS * 6,
            interval=0.25,
            message=lambda: f"{disk_usage(server.data_dir) - baseline} bytes still staged",
        )
        assert upload_rows(database) == 0
        assert list(staging_area.iterdir()) == []
        for location in [*locations, killed]:
            assert error_code(http.get(location)) == "BLOB_UPLOAD_UNKNOWN"
            response = http.patch(location, content=b"more")
            assert (response.status_code, error_code(response)) == (404, "BLOB_UPLOAD_UNKNOWN")
            response = http.put(location, params={"digest": ZERO_DIGEST})
            assert (response.status_code, error_code(response)) == (404, "BLOB_UPLOAD_UNKNOWN")
    part = {"partFirstByte": MIB, "partLastByte": MIB, "layerPartBlob": b"x"}
    assert (
        client_error(ecr.upload_layer_part, repositoryName=NAME, uploadId=layer, **part)
        == "UploadNotFoundException"
    )
    assert (
        client_error(
            ecr.complete_layer_upload,
            repositoryName=NAME,
            uploadId=layer,
            layerDigests=[ZERO_DIGEST],
        )
        == "UploadNotFoundException"
    )


def test_open_sessions_per_repository_are_bounded(bounded: ConfiguredServer, database: str) -> None:
    server = bounded
    server.create_repository(NAME)
    server.create_repository("other")
    ecr = server.ecr_client()
    with server.client() as http:
        first = start_upload(http)
        assert first.status_code == 202
        assert start_upload(http).status_code == 202
        assert ecr.initiate_layer_upload(repositoryName=NAME)["uploadId"]
        refused = start_upload(http)
        assert (refused.status_code, error_code(refused)) == (429, "TOOMANYREQUESTS")
        assert (
            client_error(ecr.initiate_layer_upload, repositoryName=NAME) == "LimitExceededException"
        )
        assert upload_rows(database) == MAX_OPEN
        assert len(list((server.data_dir / "storage" / "_uploads").iterdir())) == MAX_OPEN
        assert start_upload(http, "other").status_code == 202  # another repository's own bound

        assert http.delete(first.headers["Location"]).status_code == 204
        assert start_upload(http).status_code == 202
        assert start_upload(http).status_code == 429


def test_workers_share_one_sweep(expiring_workers: ConfiguredServer, database: str) -> None:
    """Three processes start at once: one sweep job between them, and it runs."""
    server = expiring_workers
    server.create_repository(NAME)
    with server.client() as http:
        location = start_upload(http).headers["Location"]
        assert http.patch(location, content=os.urandom(MIB)).status_code == 202
        staged = server.data_dir / "storage" / "_uploads" / location.rsplit("/", 1)[1]
        assert staged.exists()
        wait_until(
            lambda: not staged.exists(),
            timeout=EXPIRY_SECONDS * 6,
            interval=0.25,
            message="the session's staged bytes were never removed",
        )
        assert error_code(http.get(location)) == "BLOB_UPLOAD_UNKNOWN"
    jobs = query(database, "SELECT status FROM jobs WHERE kind = 'expire-uploads'")
    assert len(jobs) == 1, jobs
    assert upload_rows(database) == 0
