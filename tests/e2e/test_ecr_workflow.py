"""The ECR workflow with the real `aws` CLI and podman, as a user runs it against cargohold:

eval "$(cargohold admin credentials)"
aws ecr create-repository --repository-name spring-boot-app
aws ecr get-login-password | podman login --username AWS --password-stdin HOST
podman tag spring-app:latest HOST/spring-boot-app:1.0 && podman push HOST/spring-boot-app:1.0
aws ecr describe-images / batch-get-image / get-download-url-for-layer
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import Podman
from support.images import tar_bytes
from support.server import RegistryServer

pytestmark = pytest.mark.e2e


def _aws_binary() -> str:
    found = shutil.which("aws") or str(Path(sys.executable).with_name("aws"))
    if not Path(found).exists():
        pytest.fail("the aws CLI (PyPI awscli) is not installed", pytrace=False)
    return found


def shell(
    command: str, env: dict[str, str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=180
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{command}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def user_env(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A shell environment set up as the README says: `eval "$(cargohold admin credentials)"`."""
    env = {k: v for k, v in registry._env().items() if not k.startswith("AWS_")}
    cargohold = shlex.quote(sys.executable) + " -m cargohold"
    exports = shell(
        f"{cargohold} admin credentials --data-dir {shlex.quote(str(registry.data_dir))}", env
    ).stdout
    env["PATH"] = f"{Path(_aws_binary()).parent}:{env.get('PATH', '')}"
    for line in exports.splitlines():
        for word in shlex.split(line):
            if "=" in word and word.startswith("AWS_"):
                key, _, value = word.partition("=")
                env[key] = value
    assert env["AWS_ENDPOINT_URL_ECR"] == registry.url
    return env


def aws(env: dict[str, str], *args: str) -> Any:
    result = subprocess.run(
        [_aws_binary(), "ecr", *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"aws ecr {' '.join(args)}: {result.stderr}")
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_the_ecr_workflow_with_the_aws_cli_and_podman(
    registry: RegistryServer, podman: Podman, user_env: dict[str, str], tmp_path: Path
) -> None:
    host = registry.host
    created = aws(user_env, "create-repository", "--repository-name", "spring-boot-app")
    repository = created["repository"]
    assert repository["repositoryUri"] == f"{host}/spring-boot-app"
    assert repository["repositoryArn"] == (
        "arn:aws:ecr:us-east-1:123456789012:repository/spring-boot-app"
    )

    # Login exactly as a user types it: the password only travels through the pipe.
    podman_env = {**podman.env, **user_env}
    login = shell(
        "aws ecr get-login-password | "
        + shlex.join(podman.bare("login", "--username", "AWS", "--password-stdin", host)),
        podman_env,
    )
    assert "Login Succeeded!" in login.stdout

    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(tar_bytes({"app/app.jar": b"spring boot, or something like it\n"}))
    shell(shlex.join(podman.bare("import", str(rootfs), "spring-app:latest")), podman_env)
    shell(
        shlex.join(podman.bare("tag", "spring-app:latest", f"{host}/spring-boot-app:1.0")),
        podman_env,
    )
    shell(shlex.join(podman.bare("push", f"{host}/spring-boot-app:1.0")), podman_env)

    described = aws(user_env, "describe-images", "--repository-name", "spring-boot-app")
    [detail] = described["imageDetails"]
    assert detail["imageTags"] == ["1.0"]
    assert detail["imageSizeInBytes"] > 0
    assert detail["imagePushedAt"] > 0

    got = aws(
        user_env,
        "batch-get-image",
        "--repository-name",
        "spring-boot-app",
        "--image-ids",
        "imageTag=1.0",
    )
    assert got["failures"] == []
    [image] = got["images"]
    manifest = json.loads(image["imageManifest"])
    digest = "sha256:" + hashlib.sha256(image["imageManifest"].encode()).hexdigest()
    assert image["imageId"]["imageDigest"] == digest == detail["imageDigest"]

    for layer in manifest["layers"]:
        url = aws(
            user_env,
            "get-download-url-for-layer",
            "--repository-name",
            "spring-boot-app",
            "--layer-digest",
            layer["digest"],
        )["downloadUrl"]
        # The presigned URL needs no other credentials.
        body = httpx.get(url, timeout=60).raise_for_status().content
        assert "sha256:" + hashlib.sha256(body).hexdigest() == layer["digest"]

    # The pull is recorded; podman pulls with the login it holds.
    shell(shlex.join(podman.bare("rmi", "-a", "-f")), podman_env)
    shell(shlex.join(podman.bare("pull", f"{host}/spring-boot-app:1.0")), podman_env)
    again = aws(user_env, "describe-images", "--repository-name", "spring-boot-app")
    assert again["imageDetails"][0].get("lastRecordedPullTime", 0) > 0


def test_push_to_a_repository_that_does_not_exist_is_refused(
    registry: RegistryServer, podman: Podman, user_env: dict[str, str], tmp_path: Path
) -> None:
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(tar_bytes({"x": b"x\n"}))
    podman("import", str(rootfs), "localhost/nowhere:1")
    podman("tag", "localhost/nowhere:1", podman.ref("never-created", "1"))
    result = podman("push", podman.ref("never-created", "1"), check=False)
    assert result.returncode != 0
    assert "does not exist in the registry with id '123456789012'" in result.stderr


def test_unauthenticated_clients_are_refused(registry: RegistryServer, tmp_path: Path) -> None:
    registry.create_repository("private-app")
    anonymous = httpx.Client(base_url=registry.url, timeout=30)
    probe = anonymous.get("/v2/")
    assert probe.status_code == 401
    assert probe.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert 'service="ecr.amazonaws.com"' in probe.headers["WWW-Authenticate"]
    push = anonymous.post("/v2/private-app/blobs/uploads/?digest=sha256:" + "0" * 64, content=b"")
    assert push.status_code == 401
    forged = anonymous.get("/v2/_catalog", auth=("AWS", "not-a-token"))
    assert forged.status_code == 401


def test_an_immutable_tag_cannot_be_overwritten(
    registry: RegistryServer, podman: Podman, user_env: dict[str, str], tmp_path: Path
) -> None:
    aws(
        user_env,
        "create-repository",
        "--repository-name",
        "frozen",
        "--image-tag-mutability",
        "IMMUTABLE",
    )
    for content in (b"first\n", b"second\n"):
        rootfs = tmp_path / "rootfs.tar"
        rootfs.write_bytes(tar_bytes({"f": content}))
        podman("import", str(rootfs), "localhost/frozen:1")
        podman("tag", "localhost/frozen:1", podman.ref("frozen", "v1"))
        result = podman("push", podman.ref("frozen", "v1"), check=False)
    assert result.returncode != 0
    assert "tag invalid" in result.stderr.lower() or "TAG_INVALID" in result.stderr
    assert "cannot be overwritten because the tag is immutable" in result.stderr
