"""ECR events delivered to webhooks by a real server to real HTTP receivers: exactly the events
of a push, a tag move, a delete and a scan (with the push of its SBOM), signed, once each from a
server of two worker processes; a pattern that filters; a receiver down for 30 s loses nothing;
a server killed between the commit and the delivery delivers after its restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.images import OCI_CONFIG, OCI_LAYER, Descriptor, image_manifest, tar_bytes
from support.scan_images import os_release
from support.server import RegistryServer
from support.v2 import TinyImage, push_image
from support.waiting import wait_until
from support.webhooks import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SECRET = "e2e-hook-secret"
REPO = "events/app"


class WebhookServer(RegistryServer):
    """A server whose webhooks are `hooks` (secrets from HOOK_SECRET)."""

    def __init__(
        self,
        root: Path,
        hooks: list[dict[str, Any]],
        retry_max: float = 60,
        database_url: str | None = None,
        workers: int = 1,
    ) -> None:
        super().__init__(root / "data", root / "server.log", extra_args=("--workers", str(workers)))
        self.hooks = hooks
        self.retry_max = retry_max
        self.database_url = database_url

    def _env(self) -> dict[str, str]:
        env = super()._env()
        if self.database_url is not None:
            env["CARGOHOLD_DATABASE_URL"] = self.database_url
        env["CARGOHOLD_EVENTS_WEBHOOKS"] = json.dumps(self.hooks)
        env["CARGOHOLD_EVENTS_RETRY_MAX_SECONDS"] = str(self.retry_max)
        env["HOOK_SECRET"] = SECRET
        return env


def hook(name: str, receiver: WebhookReceiver, pattern: Any = None) -> dict[str, Any]:
    found = {"name": name, "url": receiver.url, "secret_env": "HOOK_SECRET", "timeout": 5}
    return found if pattern is None else {**found, "pattern": pattern}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def started(server: WebhookServer) -> WebhookServer:
    server.start()
    server.create_repository(REPO)
    # A target starts after the newest event once its deliverer has begun: wait for that.
    wait_until(
        lambda: "starts after event" in server.log_tail(),
        timeout=30,
        message=server.log_tail,
    )
    return server


@pytest.fixture
def stop_afterwards() -> Iterator[list[RegistryServer]]:
    servers: list[RegistryServer] = []
    yield servers
    for server in servers:
        if server.running:
            assert server.stop() == 0, server.log_tail()  # delivery ends with the server


def image(seed: str) -> TinyImage:
    """One small Debian-like layer and a config: an image the scanner can read."""
    layer = tar_bytes(
        {
            "etc/os-release": os_release("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
            "seed": seed.encode(),
        }
    )
    config = f'{{"architecture":"amd64","os":"linux","seed":"{seed}"}}'.encode()
    manifest = image_manifest(Descriptor.of(OCI_CONFIG, config), [Descriptor.of(OCI_LAYER, layer)])
    return TinyImage(layer, config, manifest)


def push(server: RegistryServer, tag: str, seed: str) -> str:
    built = image(seed)
    with server.client() as client:
        answer = push_image(client, REPO, tag, built)
        assert answer.status_code == 201, answer.text
    return built.digest


def summary(event: dict[str, Any]) -> tuple[str, ...]:
    detail = event["detail"]
    what = detail.get("action-type") or detail.get("scan-status") or ""
    return (event["detail-type"], what, detail.get("image-digest", ""), detail.get("image-tag", ""))


def arrived(receiver: WebhookReceiver, count: int, server: RegistryServer) -> None:
    wait_until(
        lambda: len(receiver.events()) >= count,
        timeout=60,
        message=lambda: f"{len(receiver.events())} of {count} events\n{server.log_tail(40)}",
    )


def test_push_tag_move_delete_and_scan_arrive_signed_and_filtered(
    tmp_path: Path,
    receiver: WebhookReceiver,
    stop_afterwards: list[RegistryServer],
    database: str | None,
) -> None:
    deletes = WebhookReceiver().start()
    try:
        server = WebhookServer(
            tmp_path,
            [
                hook("everything", receiver),
                hook("deletes", deletes, {"detail": {"action-type": ["DELETE"]}}),
            ],
            database_url=database,
            workers=2,  # two deliverers, one lease per target: no event twice
        )
        stop_afterwards.append(server)
        started(server)
        first = push(server, "1.0", "first")
        second = push(server, "1.0", "second")  # the tag moves to another image
        ecr = server.ecr_client()
        ecr.batch_delete_image(repositoryName=REPO, imageIds=[{"imageDigest": first}])
        ecr.start_image_scan(repositoryName=REPO, imageId={"imageDigest": second})
        # The scan also attaches its SBOM, a referrer pushed by digest: one more PUSH.
        arrived(receiver, 5, server)
        arrived(deletes, 1, server)
        events = receiver.events()
        assert [summary(e) for e in events[:3]] == [
            ("ECR Image Action", "PUSH", first, "1.0"),
            ("ECR Image Action", "PUSH", second, "1.0"),
            ("ECR Image Action", "DELETE", first, ""),
        ]
        scans = [e for e in events[3:] if e["detail-type"] == "ECR Image Scan"]
        sboms = [e for e in events[3:] if e["detail-type"] == "ECR Image Action"]
        assert len(events) == 5 and len(scans) == len(sboms) == 1
        assert scans[0]["detail"]["image-digest"] == second
        assert scans[0]["detail"]["scan-status"] == "COMPLETE"
        sbom = sboms[0]["detail"]
        assert sbom["action-type"] == "PUSH" and "image-tag" not in sbom
        assert "cyclonedx" in sbom["artifact-media-type"]
        assert [summary(e) for e in deletes.events()] == [("ECR Image Action", "DELETE", first, "")]
        for delivery in receiver.deliveries() + deletes.deliveries():
            assert delivery.signed_by(SECRET.encode())
            assert not delivery.signed_by(b"another secret")
            assert delivery.headers["Content-Type"] == "application/json"
            assert delivery.headers["X-Cargohold-Event-Id"] == delivery.event["id"]
            event = delivery.event
            assert (event["source"], event["account"], event["region"]) == (
                "aws.ecr",
                "123456789012",
                "us-east-1",
            )
        assert SECRET not in server.log_tail(10_000)
    finally:
        deletes.stop()


def test_a_receiver_down_for_30_seconds_loses_nothing(
    tmp_path: Path, receiver: WebhookReceiver, stop_afterwards: list[RegistryServer]
) -> None:
    server = WebhookServer(tmp_path, [hook("ci", receiver)], retry_max=4)
    stop_afterwards.append(server)
    started(server)
    receiver.stop()
    down_until = time.monotonic() + 30
    digests = [push(server, f"v{i}", f"outage {i}") for i in range(3)]
    # Pushes go on while it is down: more events queue behind the first.
    wait_until(lambda: time.monotonic() >= down_until - 15, timeout=40)
    digests += [push(server, f"v{i}", f"outage {i}") for i in range(3, 5)]
    wait_until(lambda: time.monotonic() >= down_until, timeout=40)
    assert "not delivered" in server.log_tail()
    receiver.start()
    arrived(receiver, 5, server)
    events = receiver.events()
    assert [e["detail"]["image-digest"] for e in events] == digests
    assert [e["detail"]["image-tag"] for e in events] == [f"v{i}" for i in range(5)]


def test_a_server_killed_before_delivering_delivers_after_its_restart(
    tmp_path: Path,
    receiver: WebhookReceiver,
    stop_afterwards: list[RegistryServer],
    database: str | None,
) -> None:
    server = WebhookServer(tmp_path, [hook("ci", receiver)], retry_max=2, database_url=database)
    stop_afterwards.append(server)
    started(server)
    receiver.status = 503  # refuses: the pushes commit, their events wait in the outbox
    digests = [push(server, f"k{i}", f"killed {i}") for i in range(3)]
    wait_until(lambda: len(receiver.requests) >= 2, timeout=30, message=server.log_tail)
    server.kill()
    assert receiver.events() == []
    receiver.status = 200
    server.start()
    arrived(receiver, 3, server)
    assert [e["detail"]["image-digest"] for e in receiver.events()] == digests
