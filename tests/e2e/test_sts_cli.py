"""STS and IAM with the real `aws` CLI, as an administrator runs them against cargohold, and a
role session's registry login with podman:

eval "$(cargohold admin credentials)"
aws sts get-caller-identity
aws iam create-user --user-name ci / create-role / attach-role-policy
aws sts assume-role --role-arn … --role-session-name …
AWS_ACCESS_KEY_ID=ASIA… AWS_SESSION_TOKEN=… aws ecr get-login-password | podman login …
podman pull HOST/app:1.0
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.clients import Podman
from support.images import tar_bytes
from support.server import RegistryServer

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"


def _aws_binary() -> str:
    found = shutil.which("aws") or str(Path(sys.executable).with_name("aws"))
    if not Path(found).exists():
        pytest.fail("the aws CLI (PyPI awscli) is not installed", pytrace=False)
    return found


def shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=180
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{command}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def aws(env: dict[str, str], *args: str, check: bool = True) -> Any:
    result = subprocess.run(
        [_aws_binary(), *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if not check:
        return result
    if result.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)}: {result.stderr}")
    return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture(scope="module")
def admin_env(registry: RegistryServer) -> dict[str, str]:
    """A shell set up as the README says: `eval "$(cargohold admin credentials)"`."""
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
    assert env["AWS_ENDPOINT_URL_STS"] == env["AWS_ENDPOINT_URL_IAM"] == registry.url
    return env


def session_env(admin_env: dict[str, str], credentials: dict[str, str]) -> dict[str, str]:
    return {
        **admin_env,
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def test_sts_and_iam_with_the_aws_cli(admin_env: dict[str, str]) -> None:
    who = aws(admin_env, "sts", "get-caller-identity")
    assert who["Account"] == ACCOUNT
    assert who["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/admin"

    user = aws(admin_env, "iam", "create-user", "--user-name", "ci", "--path", "/bots/")["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/bots/ci"
    assert [u["UserName"] for u in aws(admin_env, "iam", "list-users")["Users"]] == ["admin", "ci"]
    key = aws(admin_env, "iam", "create-access-key", "--user-name", "ci")["AccessKey"]
    ci_env = {
        **admin_env,
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }
    assert aws(ci_env, "sts", "get-caller-identity")["Arn"] == user["Arn"]

    failed = aws(admin_env, "iam", "get-user", "--user-name", "nobody", check=False)
    assert failed.returncode != 0
    assert "NoSuchEntity" in failed.stderr
    assert "The user with name nobody cannot be found." in failed.stderr

    session = aws(ci_env, "sts", "get-session-token", "--duration-seconds", "900")["Credentials"]
    assert session["AccessKeyId"].startswith("ASIA")
    assert aws(session_env(admin_env, session), "sts", "get-caller-identity")["Arn"] == user["Arn"]


def test_a_role_session_pulls_with_podman(
    registry: RegistryServer, podman: Podman, admin_env: dict[str, str], tmp_path: Path
) -> None:
    host = registry.host
    # The administrator pushes an image.
    aws(admin_env, "ecr", "create-repository", "--repository-name", "sts-app")
    admin_podman = {**podman.env, **admin_env}
    login = "aws ecr get-login-password | " + shlex.join(
        podman.bare("login", "--username", "AWS", "--password-stdin", host)
    )
    shell(login, admin_podman)
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(tar_bytes({"app/run.sh": b"echo pulled by a role session\n"}))
    shell(shlex.join(podman.bare("import", str(rootfs), "sts-app:latest")), admin_podman)
    shell(shlex.join(podman.bare("tag", "sts-app:latest", f"{host}/sts-app:1.0")), admin_podman)
    shell(shlex.join(podman.bare("push", f"{host}/sts-app:1.0")), admin_podman)
    shell(shlex.join(podman.bare("logout", host)), admin_podman)

    # A role the administrator may assume, holding what the ECS execution policy grants.
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "Service": "ecs-tasks.amazonaws.com",
                        "AWS": f"arn:aws:iam::{ACCOUNT}:user/admin",
                    },
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    role = aws(
        admin_env,
        "iam",
        "create-role",
        "--role-name",
        "ecsTaskExecutionRole",
        "--assume-role-policy-document",
        document,
    )["Role"]
    aws(
        admin_env,
        "iam",
        "attach-role-policy",
        "--role-name",
        "ecsTaskExecutionRole",
        "--policy-arn",
        "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
    )
    assumed = aws(
        admin_env,
        "sts",
        "assume-role",
        "--role-arn",
        role["Arn"],
        "--role-session-name",
        "task-1",
    )
    env = session_env(admin_env, assumed["Credentials"])
    who = aws(env, "sts", "get-caller-identity")
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ecsTaskExecutionRole/task-1"

    # The session's registry login works with podman, and it pulls.
    session_podman = {**podman.env, **env}
    assert "Login Succeeded!" in shell(login, session_podman).stdout
    shell(shlex.join(podman.bare("rmi", "-a", "-f")), session_podman)
    shell(shlex.join(podman.bare("pull", f"{host}/sts-app:1.0")), session_podman)
    images = shell(
        shlex.join(podman.bare("images", "--format", "{{.Repository}}:{{.Tag}}")), session_podman
    )
    assert f"{host}/sts-app:1.0" in images.stdout
