"""`cargohold ecs agent --runtime docker` against a live server and the tests' Docker engine:
the engine pulls the digest the agent resolved, by the registry's own address with the
execution role's token, and runs the task's container with its command, environment, working
directory and user; networkMode host and none; StopTask; the task role's credentials endpoint;
a denied pull fails the task before the engine is asked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from agent.conftest import Setup, lines_of, register, run_to_stop
from support.ecs import AgentProcess, running_agent

CLUSTER = "engine"


@pytest.fixture(scope="module")
def docker_agent(
    setup: Setup, docker_host: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    work = tmp_path_factory.mktemp("docker-agent")
    with running_agent(
        setup.server,
        setup.instance_env,
        work,
        cluster=CLUSTER,
        runtime="docker",
        env={"DOCKER_HOST": docker_host},
    ) as agent:
        yield agent


pytestmark = pytest.mark.usefixtures("docker_agent")


def run(setup: Setup, definition: str, **more: Any) -> dict[str, Any]:
    return run_to_stop(setup, definition, cluster=CLUSTER, **more)


def test_a_task_runs_in_the_engine(setup: Setup) -> None:
    definition = register(
        setup,
        "engine-hello",
        {
            "entryPoint": ["sh", "-c"],
            "command": ["echo hello; echo $GREETING $FROM_IMAGE; id -u; pwd; exit 5"],
            "environment": [{"name": "GREETING", "value": "hi"}],
            "workingDirectory": "/tmp",
            "user": "65534",
        },
    )
    task = run(setup, definition)
    container = task["containers"][0]
    assert (task["stopCode"], container["exitCode"]) == ("EssentialContainerExited", 5)
    assert container["imageDigest"] == setup.image.digest
    assert re.fullmatch(r"[0-9a-f]{64}", container["runtimeId"])
    assert lines_of(setup, task) == ["hello", "hi yes", "65534", "/tmp"]


def test_network_mode_none(setup: Setup) -> None:
    command = ["sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1"]
    definition = register(setup, "engine-none", {"command": command}, networkMode="none")
    task = run(setup, definition)
    assert [line.strip() for line in lines_of(setup, task)] == ["lo"]


def test_the_task_role_reaches_a_host_network_task(setup: Setup) -> None:
    fetch = (
        'wget -q -O - --header "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" '
        "$AWS_CONTAINER_CREDENTIALS_FULL_URI"
    )
    definition = register(
        setup, "engine-role", {"command": ["sh", "-c", fetch]}, taskRoleArn=setup.task_role
    )
    task = run(setup, definition)
    assert json.loads(lines_of(setup, task)[0])["RoleArn"] == setup.task_role


def test_a_denied_pull_never_reaches_the_engine(setup: Setup) -> None:
    definition = register(setup, "engine-missing", {"image": setup.ecr_uri(tag="0.0")})
    task = run(setup, definition)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotPullContainerError: ")


def test_stop_task(setup: Setup) -> None:
    ecs = setup.client("ecs")
    definition = register(setup, "engine-sleeper", {"command": ["sleep", "600"], "stopTimeout": 1})
    task = ecs.run_task(cluster=CLUSTER, taskDefinition=definition)["tasks"][0]["taskArn"]
    config = {"Delay": 1, "MaxAttempts": 60}
    ecs.get_waiter("tasks_running").wait(cluster=CLUSTER, tasks=[task], WaiterConfig=config)
    ecs.stop_task(cluster=CLUSTER, task=task)
    ecs.get_waiter("tasks_stopped").wait(cluster=CLUSTER, tasks=[task], WaiterConfig=config)
    found = ecs.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"][0]
    assert found["stopCode"] == "UserInitiated"
    assert found["containers"][0]["exitCode"] == 137
