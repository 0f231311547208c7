"""bench/run.py works end to end: a --quick run against both registries reports every metric.

Benchmarks are not tests: this proves only that the harness runs, on tiny sizes, and that its
results file and report are complete. A missing client or peer registry is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("skopeo", "wrk", "hey", "docker-registry")
SERVERS = ["cargohold", "distribution"]
THROUGHPUT = ("push", "pull", "concurrent_push")
REQUESTS = ("manifest_get", "manifest_head", "blob_head")
METRICS = (
    [f"{s}_mb_s" for s in THROUGHPUT]
    + [f"{s}_{m}" for s in REQUESTS for m in ("rps", "p50_ms", "p99_ms")]
    + [f"{s}_peak_rss_mib" for s in (*THROUGHPUT, *REQUESTS)]
)
LIMITS = ("sha256_mb_s", "disk_write_fsync_mb_s", "loopback_tcp_mb_s")


def require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"the benchmark harness needs {', '.join(missing)}: "
            "apt-get install -y skopeo wrk hey docker-registry",
            pytrace=False,
        )


#: What the user's own AWS files hold; the run must leave them byte for byte.
USER_CREDENTIALS = b"[default]\naws_access_key_id = AKIAUSERSOWNKEY00000\n"
USER_CONFIG = b"[default]\nregion = eu-north-1\n"


@dataclass
class QuickRun:
    results: Path
    stdout: str
    home: Path


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    """One `bench/run.py --quick` for the module, as a user with AWS files of their own in
    HOME and podman's REGISTRY_AUTH_FILE exported runs it."""
    require_tools()
    base = tmp_path_factory.mktemp("bench")
    home = base / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_bytes(USER_CREDENTIALS)
    (home / ".aws" / "config").write_bytes(USER_CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), REGISTRY_AUTH_FILE=str(home / "auth.json"))
    (home / "auth.json").write_text('{"auths": {}}\n')
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--quick",
            "--work-dir",
            str(base / "work"),
            "--results-dir",
            str(base / "results"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, f"bench/run.py --quick failed:\n{done.stderr[-6000:]}"
    files = sorted((base / "results").glob("*.json"))
    assert len(files) == 1, files
    assert not (base / "work").exists(), "the work directory is removed after a run"
    return QuickRun(files[0], done.stdout, home)


def test_a_run_leaves_the_users_aws_files_as_they_were(quick_run: QuickRun) -> None:
    aws = quick_run.home / ".aws"
    assert (aws / "credentials").read_bytes() == USER_CREDENTIALS
    assert (aws / "config").read_bytes() == USER_CONFIG
    assert sorted(p.name for p in aws.iterdir()) == ["config", "credentials"]


def test_tools_are_installed() -> None:
    require_tools()


def test_every_metric_is_positive_for_both_registries(quick_run: QuickRun) -> None:
    results: dict[str, Any] = json.loads(quick_run.results.read_text())
    assert results["servers"] == SERVERS
    assert results["settings"]["quick"] is True
    assert set(METRICS) <= set(results["metrics"])
    for key in METRICS:
        entry = results["metrics"][key]
        for server in SERVERS:
            samples = entry["samples"][server]
            assert samples, (key, server)
            assert all(value > 0 for value in samples), (key, server, samples)
            assert entry["median"][server] > 0, (key, server)
        assert entry["ratio"] > 0, key
    for key in LIMITS:
        assert results["limits"][key]["median"] > 0, key
    for key in ("push_mb_s", "pull_mb_s", "concurrent_push_mb_s"):
        fractions = results["fraction_of_limit"][key]["fraction"]
        assert all(fractions[server] > 0 for server in SERVERS), key
    assert all(results["machine"][k] for k in ("nproc", "memory_gib", "cpu", "kernel", "disk"))


def test_prints_a_markdown_table(quick_run: QuickRun) -> None:
    stdout = quick_run.stdout
    assert "| Metric | Unit | cargohold | Distribution 2.8 | cargohold / Distribution |" in stdout
    assert "| SHA-256, one core |" in stdout


def test_report_writes_the_page_and_the_chart(quick_run: QuickRun, tmp_path: Path) -> None:
    markdown, chart = tmp_path / "PERFORMANCE.md", tmp_path / "performance.png"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "report.py"),
            str(quick_run.results),
            "--markdown",
            str(markdown),
            "--chart",
            str(chart),
        ],
        check=True,
        timeout=120,
        cwd=REPO,
    )
    page = markdown.read_text()
    results = json.loads(quick_run.results.read_text())
    for entry in results["metrics"].values():
        assert f"| {entry['label']} |" in page
    assert "![ratios cargohold / Distribution](performance.png)" in page
    assert results["command"] in page
    assert chart.read_bytes().startswith(b"\x89PNG")
