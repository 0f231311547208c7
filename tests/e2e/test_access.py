"""What IAM lets real clients do, as an administrator would set it up with the `aws` CLI:

- a user holding AmazonEC2ContainerRegistryReadOnly logs podman in, pulls, and is refused a push;
- an ECS-style task execution role, assumed with `aws sts assume-role`, holds exactly what
  AmazonECSTaskExecutionRolePolicy grants: its session logs in and pulls, and every other ECR
  operation and `/v2/` route is denied.
"""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from support.clients import Podman
from support.ecr_operations import OPERATIONS, ROUTES
from support.images import tar_bytes
from support.server import RegistryServer
from support.v2 import TinyImage, push_image

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
TASK_EXECUTION = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
#: The ECR actions AmazonECSTaskExecutionRolePolicy allows (besides logs:CreateLogStream and
#: logs:PutLogEvents, which are not the registry's).
TASK_EXECUTION_ECR = {
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
}


def _aws_binary() -> str:
    found = shutil.which("aws") or str(Path(sys.executable).with_name("aws"))
    if not Path(found).exists():
        pytest.fail("the aws CLI (PyPI awscli) is not installed", pytrace=False)
    return found


def shell(
    command: str, env: dict[str, str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{command}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def aws(env: dict[str, str], *args: str) -> Any:
    result = subprocess.run(
        [_aws_binary(), *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)}: {result.stderr}")
    return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture(scope="module")
def admin_env(registry: RegistryServer) -> dict[str, str]:
    """A shell set up as the README says: `eval "$(cargohold admin credentials)"`."""
    env = {k: v for k, v in registry._env().items() if not k.startswith("AWS_")}
    env["PATH"] = f"{Path(_aws_binary()).parent}:{env.get('PATH', '')}"
    exports = shell(
        f"{shlex.quote(sys.executable)} -m cargohold admin credentials "
        f"--data-dir {shlex.quote(str(registry.data_dir))}",
        env,
    ).stdout
    for line in exports.splitlines():
        for word in shlex.split(line):
            if "=" in word and word.startswith("AWS_"):
                key, _, value = word.partition("=")
                env[key] = value
    return env


def with_credentials(env: dict[str, str], key: str, secret: str, token: str = "") -> dict[str, str]:
    changed = {**env, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    changed.pop("AWS_SESSION_TOKEN", None)
    if token:
        changed["AWS_SESSION_TOKEN"] = token
    return changed


def podman_login(podman: Podman, host: str) -> str:
    return "aws ecr get-login-password | " + shlex.join(
        podman.bare("login", "--username", "AWS", "--password-stdin", host)
    )


def push_with_podman(
    podman: Podman, env: dict[str, str], host: str, name: str, content: bytes, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    rootfs = tmp_path / f"{name.replace('/', '-')}.tar"
    rootfs.write_bytes(tar_bytes({"app/run.sh": content}))
    shell(shlex.join(podman.bare("import", str(rootfs), f"{name}:latest")), env)
    shell(shlex.join(podman.bare("tag", f"{name}:latest", f"{host}/{name}:1.0")), env)
    return shell(shlex.join(podman.bare("push", f"{host}/{name}:1.0")), env, check=False)


def test_a_read_only_user_pulls_with_podman_and_may_not_push(
    registry: RegistryServer, podman: Podman, admin_env: dict[str, str], tmp_path: Path
) -> None:
    host = registry.host
    aws(admin_env, "ecr", "create-repository", "--repository-name", "ro-app")
    admin_podman = {**podman.env, **admin_env}
    shell(podman_login(podman, host), admin_podman)
    pushed = push_with_podman(podman, admin_podman, host, "ro-app", b"echo v1\n", tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    shell(shlex.join(podman.bare("logout", host)), admin_podman)

    aws(admin_env, "iam", "create-user", "--user-name", "reader")
    aws(admin_env, "iam", "attach-user-policy", "--user-name", "reader", "--policy-arn", READ_ONLY)
    key = aws(admin_env, "iam", "create-access-key", "--user-name", "reader")["AccessKey"]
    reader = {
        **podman.env,
        **with_credentials(admin_env, key["AccessKeyId"], key["SecretAccessKey"]),
    }
    assert "Login Succeeded!" in shell(podman_login(podman, host), reader).stdout
    shell(shlex.join(podman.bare("rmi", "-a", "-f")), reader)
    shell(shlex.join(podman.bare("pull", f"{host}/ro-app:1.0")), reader)

    refused = push_with_podman(podman, reader, host, "ro-app", b"echo v2\n", tmp_path)
    assert refused.returncode != 0
    assert "denied" in refused.stderr.lower(), refused.stderr
    assert (
        f"User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: ecr:"
        in refused.stderr
    ), refused.stderr
    # Nothing of the refused push reached the repository.
    tags = aws(admin_env, "ecr", "list-images", "--repository-name", "ro-app")["imageIds"]
    assert [t.get("imageTag") for t in tags] == ["1.0"]


def test_an_ecs_task_execution_role_holds_exactly_its_policy(
    registry: RegistryServer, podman: Podman, admin_env: dict[str, str], tmp_path: Path
) -> None:
    host = registry.host
    name = "ecs-app"
    aws(admin_env, "ecr", "create-repository", "--repository-name", name)
    image = TinyImage.make("ecs")
    with httpx.Client(base_url=registry.url, auth=registry.auth()) as client:
        assert push_image(client, name, "v1", image).status_code == 201
    admin_podman = {**podman.env, **admin_env}
    shell(podman_login(podman, host), admin_podman)
    assert (
        push_with_podman(podman, admin_podman, host, name, b"echo ecs\n", tmp_path).returncode == 0
    )
    shell(shlex.join(podman.bare("logout", host)), admin_podman)

    trust = {
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
    role = aws(
        admin_env,
        "iam",
        "create-role",
        "--role-name",
        "taskExecution",
        "--assume-role-policy-document",
        json.dumps(trust),
    )["Role"]
    aws(
        admin_env,
        "iam",
        "attach-role-policy",
        "--role-name",
        "taskExecution",
        "--policy-arn",
        TASK_EXECUTION,
    )
    credentials = aws(
        admin_env,
        "sts",
        "assume-role",
        "--role-arn",
        role["Arn"],
        "--role-session-name",
        "task-1",
    )["Credentials"]
    session_env = with_credentials(
        admin_env,
        credentials["AccessKeyId"],
        credentials["SecretAccessKey"],
        credentials["SessionToken"],
    )
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/taskExecution/task-1"

    # The session logs podman in and pulls; it may not push.
    session_podman = {**podman.env, **session_env}
    assert "Login Succeeded!" in shell(podman_login(podman, host), session_podman).stdout
    shell(shlex.join(podman.bare("rmi", "-a", "-f")), session_podman)
    shell(shlex.join(podman.bare("pull", f"{host}/{name}:1.0")), session_podman)
    refused = push_with_podman(podman, session_podman, host, name, b"echo no\n", tmp_path)
    assert refused.returncode != 0 and "denied" in refused.stderr.lower(), refused.stderr

    # Every ECR operation: allowed exactly when the policy names its action.
    ecr = boto3.client(
        "ecr",
        endpoint_url=registry.url,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=BotoConfig(retries={"max_attempts": 1}),
    )
    wrong = []
    for operation in OPERATIONS:
        try:
            ecr._make_api_call(operation.name, operation.params(name, image))
            denied = False
        except ClientError as exc:
            error = exc.response["Error"]
            denied = error["Code"] == "AccessDeniedException"
            if denied:
                assert error["Message"].startswith(
                    f"User: {session_arn} is not authorized to perform: ecr:{operation.name} "
                ), error["Message"]
        if denied == (f"ecr:{operation.name}" in TASK_EXECUTION_ECR):
            wrong.append((operation.name, "denied" if denied else "allowed"))
    assert wrong == []

    # Every /v2/ route, with the session's registry token.
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().removeprefix("AWS:")
    with httpx.Client(base_url=registry.url, auth=("AWS", password)) as client:
        for route in ROUTES:
            answer = client.request(
                route.method,
                route.path(name, image),
                content=route.body(image) if route.body else None,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert answer.status_code != 401, (route.name, answer.text)
            if (answer.status_code == 403) == (route.action in TASK_EXECUTION_ECR):
                wrong.append((route.name, answer.status_code))
    assert wrong == []
