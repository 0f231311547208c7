"""Prometheus metrics on their own port, added up over `--workers 2`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from cargohold.metrics import FLUSH_INTERVAL
from support.fixtures import LiveServers
from support.server import free_port
from support.v2 import TinyImage, push_image
from support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url, timeout=10).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


#: Read from the database in the background: they move on their own schedule.
DATABASE_GAUGES = frozenset(
    {
        "cargohold_upload_sessions_open",
        "cargohold_job_queue_depth",
        "cargohold_jobs_running",
        "cargohold_repository_storage_bytes",
        "cargohold_database_metrics_refreshed_timestamp_seconds",
    }
)


def settled(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples once two polls a flush interval and a half apart agree (the database's
    gauges aside): every process has added what it counted."""
    seen: list[dict[tuple[str, frozenset[tuple[str, str]]], float]] = []

    def counted(found: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> set[Any]:
        return {(key, n) for key, n in found.items() if key[0] not in DATABASE_GAUGES}

    def unchanged() -> bool:
        seen.append(samples(url))
        return len(seen) > 1 and counted(seen[-1]) == counted(seen[-2])

    wait_until(unchanged, timeout=30, interval=1.5 * FLUSH_INTERVAL)
    return seen[-1]


def test_metrics_count_every_request_of_every_worker_on_their_own_port(
    live_servers: LiveServers, tmp_path: Path
) -> None:
    metrics_port = free_port()
    config = tmp_path / "cargohold.toml"
    config.write_text(f"metrics_port = {metrics_port}\n")
    server = live_servers.start("metrics", extra_args=("--config", str(config), "--workers", "2"))
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    before = settled(url)  # the start-up probes are counted before the baseline
    for _ in range(20):
        assert httpx.get(f"{server.url}/v2/").status_code == 401  # new connections: both workers
    server.create_repository("metrics/app")
    with server.client() as http:
        assert http.get("/v2/metrics/app/tags/list").status_code == 200
        assert http.get("/v2/metrics/app/manifests/absent").status_code == 404
    user = server.iam_client().create_user(UserName="metrics-denied")["User"]["UserName"]
    key = server.iam_client().create_access_key(UserName=user)["AccessKey"]
    with pytest.raises(ClientError):
        server.ecr_client(
            key=key["AccessKeyId"], secret=key["SecretAccessKey"]
        ).describe_repositories()
    assert httpx.get(f"{server.url}/v2/", auth=("AWS", "not-a-token")).status_code == 401
    after = settled(url)  # every process has added its requests

    def grown(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grown("cargohold_requests_total", front="oci", route="base", status="4xx") == 21
    assert grown("cargohold_requests_total", front="oci", route="tags", status="2xx") == 1
    assert grown("cargohold_requests_total", front="oci", route="manifests", status="4xx") == 1
    assert (
        grown("cargohold_requests_total", front="aws", route="CreateRepository", status="2xx") == 1
    )
    assert grown("cargohold_request_duration_seconds_count", front="oci", route="base") == 21
    assert grown("cargohold_authorization_denials_total", action="ecr:DescribeRepositories") == 1
    assert grown("cargohold_authentication_failures_total", action="Authenticate") == 1
    assert grown("cargohold_response_bytes_sent_total") > 0
    assert grown("cargohold_request_bytes_received_total") > 0
    # Not on the registry's port.
    assert httpx.get(f"{server.url}/metrics").status_code == 404


def family_samples(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str
) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: number for (sample, labels), number in found.items() if sample == name}


def test_metrics_of_uploads_caches_jobs_scans_and_storage_move(
    live_servers: LiveServers, tmp_path: Path
) -> None:
    metrics_port = free_port()
    config = tmp_path / "cargohold.toml"
    config.write_text(f"metrics_port = {metrics_port}\nmetrics_refresh_seconds = 0.5\n")
    server = live_servers.start("gauges", extra_args=("--config", str(config), "--workers", "2"))
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    name = "metrics/gauges"
    server.create_repository(name)
    wait_until(lambda: ("cargohold_upload_sessions_open", frozenset()) in samples(url), timeout=30)
    assert value(samples(url), "cargohold_upload_sessions_open") == 0

    with server.client() as http:
        opened = http.post(f"/v2/{name}/blobs/uploads/")
        assert opened.status_code == 202
        wait_until(lambda: value(samples(url), "cargohold_upload_sessions_open") == 1, timeout=30)
        assert http.delete(opened.headers["location"]).status_code == 204
        wait_until(lambda: value(samples(url), "cargohold_upload_sessions_open") == 0, timeout=30)

        image = TinyImage.make("metrics")
        assert push_image(http, name, "v1", image).status_code == 201
        stored = len(image.layer) + len(image.config)
        labels = {"registry": "123456789012", "repository": name}
        wait_until(
            lambda: value(samples(url), "cargohold_repository_storage_bytes", **labels) == stored,
            timeout=30,
        )
        # One connection, so one worker: the second read of the manifest is a hit of its cache.
        before = settled(url)
        for _ in range(3):
            assert http.get(f"/v2/{name}/manifests/v1").status_code == 200
    after = settled(url)
    hits = "cargohold_cache_hits_total"
    assert value(after, hits, cache="manifests") > value(before, hits, cache="manifests")
    assert value(after, hits, cache="tokens") > value(before, hits, cache="tokens")

    ecr = server.ecr_client()
    ecr.start_image_scan(repositoryName=name, imageId={"imageTag": "v1"})

    def scanned() -> str | None:
        found = ecr.describe_image_scan_findings(repositoryName=name, imageId={"imageTag": "v1"})
        status: str = found["imageScanStatus"]["status"]
        return None if status == "IN_PROGRESS" else status

    status = wait_until(scanned, timeout=60)
    final = settled(url)
    assert value(final, "cargohold_scans_total", status=status) == 1
    assert value(final, "cargohold_scan_duration_seconds_count", status=status) == 1
    assert value(final, "cargohold_job_duration_seconds_count", kind="scan") == 1
    assert value(final, "cargohold_job_failures_total", kind="scan") == 0
    # Every kind queued so far has its depth and running count, periodic ones included.
    kinds = {dict(labels)["kind"] for labels in family_samples(final, "cargohold_job_queue_depth")}
    assert {"scan", "expire-uploads"} <= kinds
    assert value(final, "cargohold_database_metrics_refreshed_timestamp_seconds") > 0
