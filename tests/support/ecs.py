"""ECS helpers shared by the tests: roles ECS may assume."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.server import RegistryServer
from support.waiting import wait_until

TASKS_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def make_role(iam: Any, name: str, trust: str = TASKS_TRUST) -> str:
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    return arn


#: What AmazonEC2ContainerServiceforEC2Role grants an instance, and the task listing it polls.
INSTANCE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecs:RegisterContainerInstance",
                "ecs:DeregisterContainerInstance",
                "ecs:DiscoverPollEndpoint",
                "ecs:Poll",
                "ecs:Submit*",
                "ecs:ListTasks",
                "ecs:DescribeTasks",
                "ecs:DescribeTaskDefinition",
                "ecr:GetAuthorizationToken",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": "*",
        }
    ],
}


def instance_env(iam: Any, region: str, name: str = "instance") -> dict[str, str]:
    """The environment of an agent whose credentials are those of a user holding what an
    instance role holds (INSTANCE_POLICY), and nothing of this machine's AWS configuration."""
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name, PolicyName="ecs-instance", PolicyDocument=json.dumps(INSTANCE_POLICY)
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CARGOHOLD_"))}
    env.update(
        AWS_ACCESS_KEY_ID=key["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
        AWS_DEFAULT_REGION=region,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


class AgentProcess:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_agent(
    server: RegistryServer,
    instance: dict[str, str],
    work: Path,
    *,
    cluster: str,
    runtime: str,
    env: dict[str, str] | None = None,
) -> Iterator[AgentProcess]:
    """`cargohold ecs agent` serving `cluster` with `runtime`, until the block ends (SIGTERM,
    which must stop it)."""
    log = work / "agent.log"
    ecs = server.aws_client("ecs")
    ecs.create_cluster(clusterName=cluster)
    before = set(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cargohold",
                "ecs",
                "agent",
                "--cluster",
                cluster,
                "--endpoint-url",
                server.url,
                "--runtime",
                runtime,
                "--work-dir",
                str(work / "state"),
                "--poll-interval",
                "0.2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**instance, **(env or {})},
        )
    agent = AgentProcess(process, log)

    def registered() -> bool:
        assert process.poll() is None, agent.output()
        now = set(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"])
        return bool(now - before)

    try:
        wait_until(registered, timeout=30)
        yield agent
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("the agent did not stop on SIGTERM\n" + agent.output()) from None
    # Stopping deregistered it.
    assert not set(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]) - before
