"""Three nodes on one PostgreSQL database and one SeaweedFS bucket, behind HAProxy balancing
every request round-robin (tests/support/cluster.py): one registry whichever node answers.

The scenarios are bounded versions of bench/cluster.py's (which kills nodes under a 1 GiB
push): pushes whose chunks land on different nodes, a node killed mid-push and mid-pull, a
rolling restart under continuous pulls, read-after-write across nodes, and the object store
restarted mid-push.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from support.clients import Skopeo
from support.cluster import SERVED_BY, Cluster
from support.images import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    OciLayout,
    image_manifest,
    write_random_layer,
)
from support.seaweed import Seaweed
from support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(600)]

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    schema = f"c_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, seaweed: Seaweed, database_url: str
) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("cluster"), seaweed, database_url)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def resume_offset(client: httpx.Client, location: str) -> int:
    """Where the registry says an upload stands (the OCI way to resume after a failure),
    asked again while the registry answers 503."""
    found: list[int] = []

    def answered() -> bool:
        try:
            status = client.get(location)
        except httpx.TransportError:
            return False
        if status.status_code == 204:
            found.append(int(status.headers["range"].split("-")[1]) + 1)
            return True
        assert status.status_code == 503, status.text
        return False

    wait_until(answered, timeout=60, interval=0.2)
    return found[0]


def chunked_push(
    client: httpx.Client,
    name: str,
    data: bytes,
    chunk: int,
    *,
    between: list[tuple[int, object]] | None = None,
) -> tuple[str, list[str], int]:
    """Push `data` in PATCHes of `chunk` bytes, resuming from the registry's offset after any
    failure; `between` runs callables before the chunk of the given index. The location, the
    node of each accepted PATCH, and how many PATCHes failed."""
    started = client.post(f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    served: list[str] = []
    failures, offset, index = 0, 0, 0
    actions = dict(between or [])
    while offset < len(data):
        action = actions.pop(index, None)
        if callable(action):
            action()
        index += 1
        piece = data[offset : offset + chunk]
        try:
            answer = client.patch(
                location,
                content=piece,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(piece) - 1}",
                },
            )
        except httpx.TransportError:
            answer = None
        if answer is not None and answer.status_code == 202:
            served.append(answer.headers[SERVED_BY])
            location = answer.headers["location"]
            offset += len(piece)
            continue
        failures += 1
        if answer is not None:
            assert answer.status_code in (416, 503), answer.text
            if answer.status_code == 503:
                assert answer.headers["retry-after"]
        offset = resume_offset(client, location)
    return location, served, failures


def finish(client: httpx.Client, location: str, digest: str) -> httpx.Response:
    """Complete the upload, asking again while the registry answers 503."""
    answers: list[httpx.Response] = []

    def answered() -> bool:
        answers.append(client.put(location, params={"digest": digest}))
        return answers[-1].status_code != 503

    wait_until(answered, timeout=30, interval=0.2)
    return answers[-1]


def test_a_chunked_push_lands_on_every_node_and_pulls_back(cluster: Cluster) -> None:
    cluster.create_repository("spread")
    data = os.urandom(12 * MIB + 3)
    with cluster.client() as client:
        location, served, failures = chunked_push(client, "spread", data, 2 * MIB)
        assert failures == 0
        assert set(served) == {"node0", "node1", "node2"}
        assert client.head(f"/v2/spread/blobs/{digest_of(data)}").status_code == 404
        done = finish(client, location, digest_of(data))
        assert done.status_code == 201, done.text
        for _ in range(3):  # every node serves it
            got = client.get(f"/v2/spread/blobs/{digest_of(data)}")
            assert got.status_code == 200 and digest_of(got.content) == digest_of(data)


def test_skopeo_pushes_and_pulls_through_the_balancer(
    cluster: Cluster, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cluster.create_repository("skopeo/app")
    layout = OciLayout(tmp_path / "source")
    layers = [write_random_layer(layout.blobs_dir, seed=i, size=3 * MIB) for i in range(3)]
    image = layout.add_image([(layer, None) for layer in layers], tag="v1")
    skopeo = Skopeo(cluster, tmp_path_factory.mktemp("skopeo"))  # type: ignore[arg-type]
    skopeo("copy", layout.reference("v1"), f"docker://{cluster.host}/skopeo/app:v1")
    pulled = OciLayout(tmp_path / "pulled")
    skopeo("copy", f"docker://{cluster.host}/skopeo/app:v1", pulled.reference("v1"))
    index = json.loads((pulled.path / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    for layer in layers:
        blob = pulled.read_blob(layer.descriptor.digest)
        assert digest_of(blob) == layer.descriptor.digest


def test_a_node_killed_mid_push_and_mid_pull(cluster: Cluster) -> None:
    cluster.create_repository("killed")
    data = os.urandom(24 * MIB)
    victim = cluster.nodes[1]
    with cluster.client() as client:
        location, served, _ = chunked_push(
            client, "killed", data, 2 * MIB, between=[(5, victim.kill)]
        )
        assert "node1" in served[:5] and "node1" not in served[6:]
        assert client.head(f"/v2/killed/blobs/{digest_of(data)}").status_code == 404
        done = finish(client, location, digest_of(data))
        assert done.status_code == 201, done.text
        victim.start()
        cluster.wait_all_up()
        # A pull streamed by the node that dies: the client resumes with a Range elsewhere.
        received = bytearray()
        killed = False
        while len(received) < len(data):
            headers = {"Range": f"bytes={len(received)}-"} if received else {}
            try:
                with client.stream(
                    "GET", f"/v2/killed/blobs/{digest_of(data)}", headers=headers
                ) as answer:
                    assert answer.status_code in (200, 206)
                    for piece in answer.iter_bytes(MIB):
                        received += piece
                        if not killed and len(received) > 4 * MIB:
                            killed = True
                            node = int(answer.headers[SERVED_BY].removeprefix("node"))
                            cluster.nodes[node].kill()
                            dead = cluster.nodes[node]
            except (httpx.TransportError, httpx.RemoteProtocolError):
                continue
        assert killed and digest_of(bytes(received)) == digest_of(data)
        dead.start()
        cluster.wait_all_up()


def test_read_after_write_across_nodes(cluster: Cluster) -> None:
    """1,000 tag moves, each through one node and read at once through another: 0 stale."""
    cluster.create_repository("moving")
    layer, config = b"a layer", b'{"architecture":"amd64","os":"linux"}'
    nodes = [
        httpx.Client(base_url=node.url, auth=cluster.nodes[0].auth()) for node in cluster.nodes
    ]
    try:
        for blob in (layer, config):
            answer = nodes[0].post(
                "/v2/moving/blobs/uploads/", params={"digest": digest_of(blob)}, content=blob
            )
            assert answer.status_code == 201
        stale = 0
        for i in range(1000):
            manifest = image_manifest(
                Descriptor.of(OCI_CONFIG, config),
                [Descriptor.of(OCI_LAYER, layer)],
                annotations={"i": str(i)},
            )
            writer, reader = nodes[i % 3], nodes[(i + 1) % 3]
            put = writer.put(
                "/v2/moving/manifests/latest",
                content=manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert put.status_code == 201, put.text
            got = reader.head("/v2/moving/manifests/latest", headers={"Accept": OCI_MANIFEST})
            if got.headers.get("docker-content-digest") != digest_of(manifest):
                stale += 1
        assert stale == 0
        # A delete through one node is what the others answer at once.
        for i in range(30):
            tag = f"gone-{i}"
            manifest = image_manifest(
                Descriptor.of(OCI_CONFIG, config),
                [Descriptor.of(OCI_LAYER, layer)],
                annotations={"gone": str(i)},
            )
            put = nodes[i % 3].put(
                f"/v2/moving/manifests/{tag}",
                content=manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert put.status_code == 201
            assert nodes[(i + 1) % 3].head(f"/v2/moving/manifests/{tag}").status_code == 200
            deleted = nodes[(i + 1) % 3].delete(f"/v2/moving/manifests/{digest_of(manifest)}")
            assert deleted.status_code == 202
            assert nodes[(i + 2) % 3].head(f"/v2/moving/manifests/{tag}").status_code == 404
    finally:
        for client in nodes:
            client.close()


def test_a_rolling_restart_under_continuous_pulls(cluster: Cluster) -> None:
    cluster.create_repository("rolling")
    data = os.urandom(2 * MIB)
    with cluster.client() as client:
        answer = client.post(
            "/v2/rolling/blobs/uploads/", params={"digest": digest_of(data)}, content=data
        )
        assert answer.status_code == 201
    failures: list[str] = []
    pulls = 0
    stop = threading.Event()

    def pull() -> None:
        nonlocal pulls
        with cluster.client(timeout=30) as puller:
            while not stop.is_set():
                try:
                    got = puller.get(f"/v2/rolling/blobs/{digest_of(data)}")
                    ok = got.status_code == 200 and got.content == data
                    if not ok:
                        failures.append(f"{got.status_code} {got.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                pulls += 1

    pullers = [threading.Thread(target=pull) for _ in range(2)]
    for each in pullers:
        each.start()
    try:
        for node in cluster.nodes:
            node.stop()
            node.start()
            cluster.wait_all_up()
    finally:
        stop.set()
        for each in pullers:
            each.join(60)
    assert pulls > 20 and failures == []


def test_periodic_jobs_are_queued_once_for_every_node(cluster: Cluster, database_url: str) -> None:
    """Each node's job runner queues the periodic kinds on start; the cluster holds one row per
    kind, which whichever node runs it queues again (leases decide who)."""
    with psycopg.connect(database_url, autocommit=True) as db:
        rows = db.execute(
            "SELECT kind, count(*) FROM jobs WHERE status IN ('queued', 'running') GROUP BY kind"
        ).fetchall()
    counts = dict(rows)
    assert counts.get("expire-uploads") == 1, counts


def test_the_store_restarted_mid_push(cluster: Cluster, seaweed: Seaweed) -> None:
    """The store goes away between chunks: PATCHes get 503 with Retry-After (never 500), the
    nodes are not ready meanwhile, and the push completes once it is back, with the right
    bytes or not at all."""
    cluster.create_repository("store-restart")
    data = os.urandom(16 * MIB + 11)
    small = os.urandom(1000)
    with cluster.client() as client:
        answer = client.post(
            "/v2/store-restart/blobs/uploads/", params={"digest": digest_of(small)}, content=small
        )
        assert answer.status_code == 201
    seen_down: list[int] = []

    def store_down() -> None:
        seaweed.stop()
        with httpx.Client(base_url=cluster.nodes[0].url, auth=cluster.nodes[0].auth()) as node:
            blob = node.get(f"/v2/store-restart/blobs/{digest_of(small)}")
            assert blob.status_code == 503 and blob.headers["retry-after"] == "5"
            assert blob.json()["errors"][0]["code"] == "UNAVAILABLE"
            assert "retry later" in blob.json()["errors"][0]["message"]
            ready = node.get("/health/ready")
            seen_down.append(ready.status_code)
            assert ready.json()["storage"] == "unavailable"
            assert ready.headers["retry-after"]
            assert node.get("/health/live").status_code == 200
        restarted.start()

    # The outage lasts three seconds, whatever the client does meanwhile.
    restarted = threading.Timer(3.0, seaweed.start)

    with cluster.client() as client:
        location, _, _ = chunked_push(
            client,
            "store-restart",
            data,
            6 * MIB,
            between=[(1, store_down)],
        )
        restarted.join()
        assert seen_down == [503]
        done = finish(client, location, digest_of(data))
        if done.status_code == 201:
            got = client.get(f"/v2/store-restart/blobs/{digest_of(data)}")
            assert digest_of(got.content) == digest_of(data)
        else:
            assert done.status_code < 500
            assert client.head(f"/v2/store-restart/blobs/{digest_of(data)}").status_code == 404
