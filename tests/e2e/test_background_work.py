"""The background work of a running server with two worker processes, on SQLite and on
PostgreSQL: a repository's
lifecycle policy runs by itself once its interval has passed, once across both processes (one
`PolicyExecutionEvent`), and garbage collection then removes the expired images' blobs from
disk while the images left still pull."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.server import RegistryServer
from support.v2 import TinyImage, push_image
from support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REPO = "background/app"


class ConfiguredServer(RegistryServer):
    def __init__(self, root: Path, environment: dict[str, str]) -> None:
        super().__init__(root / "data", root / "server.log", extra_args=("--workers", "2"))
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


@pytest.fixture
def server(tmp_path: Path, database: str) -> Iterator[ConfiguredServer]:
    server = ConfiguredServer(
        tmp_path,
        {
            "CARGOHOLD_DATABASE_URL": database,
            "CARGOHOLD_LIFECYCLE_INTERVAL_SECONDS": "3",
            "CARGOHOLD_GC_INTERVAL_SECONDS": "2",
            "CARGOHOLD_GC_GRACE_SECONDS": "1",
        },
    )
    server.start()
    try:
        yield server
    finally:
        code = server.stop()
        assert code in (0, -15), f"the server exited with {code}\n{server.log_tail()}"


def blob_files(server: RegistryServer) -> set[str]:
    root = Path(server.data_dir) / "storage" / "blobs"
    return {f"sha256:{p.name}" for p in root.rglob("*") if p.is_file()}


def lifecycle_events(server: RegistryServer) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "cargohold", "audit", "--json", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=server._env(),  # the server's database
    ).stdout
    events = [json.loads(line) for line in out.splitlines()]
    return [e for e in events if e["eventName"] == "PolicyExecutionEvent"]


def test_policies_and_collection_run_by_themselves(server: ConfiguredServer) -> None:
    ecr = server.ecr_client()
    ecr.create_repository(repositoryName=REPO)
    images = [TinyImage.make(f"build {i}") for i in range(4)]
    with server.client() as client:
        for image in images:  # each push moves `latest`: the earlier ones end untagged
            assert push_image(client, REPO, "latest", image).status_code == 201
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep the newest untagged build",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    ecr.put_lifecycle_policy(repositoryName=REPO, lifecyclePolicyText=json.dumps(policy))

    def left() -> list[str]:
        return [d["imageDigest"] for d in ecr.describe_images(repositoryName=REPO)["imageDetails"]]

    wait_until(lambda: len(left()) == 2, timeout=60, interval=0.5, message="no lifecycle run")
    assert set(left()) == {images[2].digest, images[3].digest}
    expired = {image.layer_digest for image in images[:2]}
    wait_until(
        lambda: not expired & blob_files(server),
        timeout=60,
        interval=0.5,
        message="the expired images' blobs are still stored",
    )
    # More intervals pass; the policy runs again with nothing to do: still one record.
    wait_until(
        lambda: (
            ecr.get_lifecycle_policy(repositoryName=REPO)["lastEvaluatedAt"].timestamp()
            > lifecycle_events(server)[0]["serviceEventDetails"]["lifecycleEventPolicy"][
                "lastEvaluatedAt"
            ]
            / 1000
            + 1
        ),
        timeout=60,
        interval=0.5,
        message="the policy did not run again",
    )
    (event,) = lifecycle_events(server)
    actions = event["serviceEventDetails"]["lifecycleEventImageActions"]
    assert {a["lifecycleEventImage"]["digest"] for a in actions} == {i.digest for i in images[:2]}
    with server.client() as client:
        assert client.get(f"/v2/{REPO}/manifests/latest").status_code == 200
        assert client.get(f"/v2/{REPO}/blobs/{images[3].layer_digest}").status_code == 200
