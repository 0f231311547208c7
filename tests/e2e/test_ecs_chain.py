"""The whole chain with the real clients, as the README walks it: `aws ecr create-repository`,
`aws ecr get-login-password | docker login`, `docker push`; `aws iam create-role` for an
execution role (trusting ecs-tasks.amazonaws.com, with AmazonECSTaskExecutionRolePolicy) and a
task role; `aws ecs register-task-definition` naming the image by its
`<account>.dkr.ecr.<region>.amazonaws.com` URI; `aws ecs run-task`, `aws ecs wait
tasks-stopped`; the output in `aws logs get-log-events`, the exit code in `describe-tasks`, the
task role's credentials read by the task; and the pull refused by a repository policy:
CannotPullContainerError. The agent runs tasks on the tests' Docker engine.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.dockerd import DockerCli
from support.ecs import TASKS_TRUST, AgentProcess, instance_env, running_agent
from support.server import RegistryServer

pytestmark = pytest.mark.e2e

EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
# The container prints, reads its task role's credentials from the endpoint the agent serves,
# and exits with 7; the image holds only /bin/busybox.
SCRIPT = (
    "echo started; "
    'busybox wget -q -O - --header "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" '
    '"$AWS_CONTAINER_CREDENTIALS_FULL_URI"; echo; exit 7'
)


@pytest.fixture(scope="module")
def env(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The administrator's shell: its AWS variables, the venv's `aws`, a docker config of its
    own."""
    docker_config = tmp_path_factory.mktemp("docker-config")
    found = {k: v for k, v in registry._env().items() if not k.startswith("AWS_")}
    found.update(registry.admin_credentials())
    found["AWS_ENDPOINT_URL"] = registry.url
    found["DOCKER_CONFIG"] = str(docker_config)
    found["PATH"] = f"{Path(sys.executable).parent}:{found.get('PATH', '')}"
    return found


def aws(env: dict[str, str], *args: str) -> Any:
    result = subprocess.run(
        ["aws", *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)}: {result.stderr}")
    return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture(scope="module")
def agent(
    registry: RegistryServer, docker_host: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    region = registry.admin_credentials()["AWS_DEFAULT_REGION"]
    instance = instance_env(registry.iam_client(), region)
    with running_agent(
        registry,
        instance,
        tmp_path_factory.mktemp("agent"),
        cluster="default",
        runtime="docker",
        env={"DOCKER_HOST": docker_host},
    ) as running:
        yield running


def push_app(registry: RegistryServer, env: dict[str, str], docker: DockerCli, tmp: Path) -> None:
    aws(env, "ecr", "create-repository", "--repository-name", "spring-boot-app")
    docker_env = {**env, **docker.env, "DOCKER_CONFIG": env["DOCKER_CONFIG"]}
    login = subprocess.run(
        [
            "bash",
            "-c",
            "set -o pipefail; aws ecr get-login-password | "
            f"{shlex.quote(docker.binary)} login --username AWS --password-stdin {registry.host}",
        ],
        env=docker_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Login Succeeded" in login.stdout, login.stderr
    built = docker.build_busybox(tmp / "context")
    remote = f"{registry.host}/spring-boot-app:1.0"
    for args in (["tag", built, remote], ["push", remote]):
        result = subprocess.run(
            [docker.binary, *args], env=docker_env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr
    docker.remove_images(built, remote)


def register(env: dict[str, str], tmp: Path, family: str, image: str, **roles: str) -> None:
    definition = {
        "family": family,
        "networkMode": "host",
        "containerDefinitions": [
            {
                "name": "app",
                "image": image,
                "essential": True,
                "entryPoint": ["/bin/busybox", "sh", "-c"],
                "command": [SCRIPT],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/ecs/spring-boot-app",
                        "awslogs-stream-prefix": "ecs",
                    },
                },
            }
        ],
        **roles,
    }
    path = tmp / f"{family}.json"
    path.write_text(json.dumps(definition))
    aws(env, "ecs", "register-task-definition", "--cli-input-json", f"file://{path}")


def run_and_wait(env: dict[str, str], family: str) -> dict[str, Any]:
    task = aws(env, "ecs", "run-task", "--task-definition", family)["tasks"][0]["taskArn"]
    aws(env, "ecs", "wait", "tasks-stopped", "--tasks", task)
    found: dict[str, Any] = aws(env, "ecs", "describe-tasks", "--tasks", task)["tasks"][0]
    return found


def test_the_chain(
    registry: RegistryServer,
    env: dict[str, str],
    docker: DockerCli,
    agent: AgentProcess,
    tmp_path: Path,
) -> None:
    push_app(registry, env, docker, tmp_path)
    account = aws(env, "sts", "get-caller-identity")["Account"]
    region = env["AWS_DEFAULT_REGION"]
    image = f"{account}.dkr.ecr.{region}.amazonaws.com/spring-boot-app:1.0"
    execution = aws(
        env,
        "iam",
        "create-role",
        "--role-name",
        "ecsTaskExecutionRole",
        "--assume-role-policy-document",
        TASKS_TRUST,
    )["Role"]["Arn"]
    aws(
        env,
        "iam",
        "attach-role-policy",
        "--role-name",
        "ecsTaskExecutionRole",
        "--policy-arn",
        EXECUTION_POLICY,
    )
    task_role = aws(
        env,
        "iam",
        "create-role",
        "--role-name",
        "springBootTask",
        "--assume-role-policy-document",
        TASKS_TRUST,
    )["Role"]["Arn"]
    aws(env, "logs", "create-log-group", "--log-group-name", "/ecs/spring-boot-app")
    register(
        env, tmp_path, "spring-boot-app", image, executionRoleArn=execution, taskRoleArn=task_role
    )

    task = run_and_wait(env, "spring-boot-app")
    assert task["lastStatus"] == "STOPPED"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["containers"][0]["exitCode"] == 7
    task_id = task["taskArn"].rpartition("/")[2]
    events = aws(
        env,
        "logs",
        "get-log-events",
        "--log-group-name",
        "/ecs/spring-boot-app",
        "--log-stream-name",
        f"ecs/app/{task_id}",
        "--start-from-head",
    )["events"]
    lines = [event["message"] for event in events]
    assert lines[0] == "started"
    credentials = json.loads(lines[1])
    assert credentials["RoleArn"] == task_role
    who = subprocess.run(
        ["aws", "sts", "get-caller-identity", "--output", "json"],
        env={
            **env,
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["Token"],
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(who.stdout)["Arn"] == (
        f"arn:aws:sts::{account}:assumed-role/springBootTask/{task_id}"
    )

    # The execution role's pull denied by the repository's policy.
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": {"AWS": execution}, "Action": "ecr:BatchGetImage"}
        ],
    }
    aws(
        env,
        "ecr",
        "set-repository-policy",
        "--repository-name",
        "spring-boot-app",
        "--policy-text",
        json.dumps(deny),
    )
    refused = run_and_wait(env, "spring-boot-app")
    assert refused["stopCode"] == "TaskFailedToStart"
    assert refused["stoppedReason"].startswith("CannotPullContainerError: ")
