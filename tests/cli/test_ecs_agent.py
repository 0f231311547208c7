"""`cargohold ecs agent` refuses to start, saying why, when it cannot join the cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.server import free_port


def test_an_agent_that_cannot_join_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="AKIAEXAMPLEEXAMPLE12",
        AWS_SECRET_ACCESS_KEY="secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cargohold",
            "ecs",
            "agent",
            "--cluster",
            "c",
            "--endpoint-url",
            url,
            "--runtime",
            "chroot",
            "--work-dir",
            str(tmp_path / "agent"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"the agent could not join ECS at {url}" in result.stderr
