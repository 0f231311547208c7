"""The ECR workflow with the real Docker engine (tests/support/dockerd.py) and the `aws` CLI:

aws ecr get-login-password | docker login --username AWS --password-stdin HOST
docker tag / docker push / docker pull / docker run --network none

The image is built in the test from Debian's static busybox, so nothing comes from the network.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from support.dockerd import DockerCli
from support.server import RegistryServer

pytestmark = pytest.mark.e2e


def _aws_env(registry: RegistryServer, docker: DockerCli) -> dict[str, str]:
    """The docker CLI's environment plus the administrator's AWS variables and the venv's `aws`."""
    env = {k: v for k, v in docker.env.items() if not k.startswith("AWS_")}
    env.update(registry.admin_credentials())
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(registry.data_dir.parent / "aws-credentials")
    env["AWS_CONFIG_FILE"] = str(registry.data_dir.parent / "aws-config")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def test_docker_logs_in_pushes_pulls_and_runs_an_image(
    registry: RegistryServer, docker: DockerCli, tmp_path: Path
) -> None:
    host = registry.host
    registry.create_repository("busybox-app")
    built = docker.build_busybox(tmp_path / "context")
    remote = f"{host}/busybox-app:1.0"
    try:
        login = subprocess.run(
            [
                "bash",
                "-c",
                "set -o pipefail; aws ecr get-login-password | "
                f"{shlex.quote(docker.binary)} login --username AWS --password-stdin {host}",
            ],
            env=_aws_env(registry, docker),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert login.returncode == 0, login.stderr
        assert "Login Succeeded" in login.stdout
        # The login is kept in the test's DOCKER_CONFIG, never in ~/.docker.
        auths = json.loads((docker.config_dir / "config.json").read_text())["auths"]
        assert host in auths

        docker("tag", built, remote)
        pushed = docker("push", remote)
        assert "digest: sha256:" in pushed.stdout

        [detail] = registry.ecr_client().describe_images(repositoryName="busybox-app")[
            "imageDetails"
        ]
        assert detail["imageTags"] == ["1.0"]
        assert detail["imageDigest"] in pushed.stdout

        # Pulled back from the registry alone: the local copies are gone first.
        docker.remove_images(built, remote)
        assert docker("image", "inspect", remote, check=False).returncode != 0
        pulled = docker("pull", remote)
        assert detail["imageDigest"] in pulled.stdout

        ran = docker("run", "--rm", "--network", "none", remote)
        assert ran.stdout.strip() == "hello from busybox"
    finally:
        docker.remove_images(built, remote)


def test_docker_without_a_login_is_refused(
    registry: RegistryServer, docker: DockerCli, tmp_path: Path
) -> None:
    registry.create_repository("no-login")
    built = docker.build_busybox(tmp_path / "context")
    remote = f"{registry.host}/no-login:1"
    try:
        docker("tag", built, remote)
        refused = docker("push", remote, check=False)
        assert refused.returncode != 0
        assert "no basic auth credentials" in refused.stderr or "401" in refused.stderr
    finally:
        docker.remove_images(built, remote)
