"""A live cargohold, the busybox image pushed to it, IAM roles for tasks, and `cargohold ecs
agent` run as a real subprocess with an instance user's credentials."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from support.busybox import BusyboxImage
from support.ecs import AgentProcess, instance_env, make_role, running_agent
from support.fixtures import LiveServers
from support.server import RegistryServer

LOG_GROUP = "/ecs/agent-tests"
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


@dataclass(frozen=True)
class Setup:
    server: RegistryServer
    account: str
    region: str
    image: BusyboxImage
    execution_role: str
    task_role: str
    instance_env: dict[str, str]

    def ecr_uri(self, name: str = "busybox", tag: str = "1.0") -> str:
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{name}:{tag}"

    def client(self, service: str) -> Any:
        return self.server.aws_client(service)


@pytest.fixture(scope="module")
def setup(live_servers: LiveServers) -> Setup:
    server = live_servers.start("ecs-agent-server")
    account = server.sts_client().get_caller_identity()["Account"]
    region = server.admin_credentials()["AWS_DEFAULT_REGION"]
    server.create_repository("busybox")
    image = BusyboxImage.make()
    with server.client() as client:
        image.push(client, "busybox", "1.0")
    iam = server.iam_client()
    execution = make_role(iam, "ecsTaskExecutionRole")
    iam.attach_role_policy(RoleName="ecsTaskExecutionRole", PolicyArn=EXECUTION_POLICY)
    task_role = make_role(iam, "appTaskRole")
    env = instance_env(iam, region)
    server.aws_client("logs").create_log_group(logGroupName=LOG_GROUP)
    return Setup(server, account, region, image, execution, task_role, env)


@pytest.fixture(scope="module")
def chroot_agent(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    with running_agent(
        setup.server,
        setup.instance_env,
        tmp_path_factory.mktemp("agent"),
        cluster="agents",
        runtime="chroot",
    ) as agent:
        yield agent


def register(setup: Setup, family: str, container: dict[str, Any], **more: Any) -> str:
    """A task definition of one essential container `main` of the busybox image, its output
    sent to LOG_GROUP; `networkMode` host unless given."""
    definition = {
        "name": "main",
        "image": setup.ecr_uri(),
        "essential": True,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": LOG_GROUP,
                "awslogs-region": setup.region,
                "awslogs-stream-prefix": "ecs",
            },
        },
        **container,
    }
    found = setup.client("ecs").register_task_definition(
        family=family,
        executionRoleArn=setup.execution_role,
        networkMode=more.pop("networkMode", "host"),
        containerDefinitions=[definition],
        **more,
    )
    return str(found["taskDefinition"]["taskDefinitionArn"])


def run_to_stop(
    setup: Setup, definition: str, cluster: str = "agents", **more: Any
) -> dict[str, Any]:
    """RunTask, then boto3's tasks_stopped waiter; the task as DescribeTasks shows it."""
    ecs = setup.client("ecs")
    task = ecs.run_task(cluster=cluster, taskDefinition=definition, **more)["tasks"][0]
    ecs.get_waiter("tasks_stopped").wait(
        cluster=cluster, tasks=[task["taskArn"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    found: dict[str, Any] = ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]])["tasks"][0]
    return found


def lines_of(setup: Setup, task: dict[str, Any]) -> list[str]:
    """What the task's `main` container wrote, from its awslogs stream (`ecs/main/TASK`)."""
    stream = "ecs/main/" + task["taskArn"].rpartition("/")[2]
    events = setup.client("logs").get_log_events(
        logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True
    )["events"]
    return [event["message"] for event in events]
