"""Prometheus metrics on their own port, added up over `--workers 2`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from cargohold.metrics import FLUSH_INTERVAL
from support.fixtures import LiveServers
from support.server import free_port
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


def settled(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples once two polls a flush interval and a half apart agree: every process has
    added what it counted."""
    seen: list[dict[tuple[str, frozenset[tuple[str, str]]], float]] = []

    def unchanged() -> bool:
        seen.append(samples(url))
        return len(seen) > 1 and seen[-1] == seen[-2]

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
