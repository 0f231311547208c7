"""bench/routing.py runs: both matchers agree on every representative request and are timed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_routing_benchmark_runs() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "routing.py"), "--n", "200", "--repeat", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert "hand-written" in result.stdout
    assert "starlette Router" in result.stdout
