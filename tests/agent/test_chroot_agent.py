"""`cargohold ecs agent --runtime chroot` against a live server: a task's image is pulled with
its execution role's token (assumed as ecs-tasks.amazonaws.com) by the registry's ECR host
name, checked and run in namespaces of its own; the task moves to STOPPED with its container's
exit code; pulls that fail stop it with CannotPullContainerError; StopTask stops it; its task
role's credentials reach it through the loopback credentials endpoint, and no other task's."""

from __future__ import annotations

import json

import pytest

from agent.conftest import Setup, lines_of, register, run_to_stop
from support.ecs import make_role

pytestmark = pytest.mark.usefixtures("chroot_agent")


def test_a_task_runs_to_its_exit_code(setup: Setup) -> None:
    definition = register(
        setup,
        "hello",
        {
            "entryPoint": ["sh", "-c"],
            "command": ["echo hello; echo $GREETING $FROM_IMAGE; id -u; pwd; exit 3"],
            "environment": [{"name": "GREETING", "value": "hi"}],
            "workingDirectory": "/tmp",
            "user": "nobody",
        },
    )
    task = run_to_stop(setup, definition)
    assert task["lastStatus"] == "STOPPED"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    container = task["containers"][0]
    assert container["exitCode"] == 3
    assert container["imageDigest"] == setup.image.digest
    assert task["pullStartedAt"] <= task["pullStoppedAt"] <= task["startedAt"]
    assert lines_of(setup, task) == ["hello", "hi yes", "65534", "/tmp"]


def test_the_image_defaults_apply_and_overrides_win(setup: Setup) -> None:
    definition = register(setup, "defaults", {"command": ["sh", "-c", "echo one"]})
    overrides = {"containerOverrides": [{"name": "main", "command": ["echo", "two"]}]}
    task = run_to_stop(setup, definition, overrides=overrides)
    assert task["containers"][0]["exitCode"] == 0
    assert lines_of(setup, task) == ["two"]


def test_a_denied_pull_fails_the_task(setup: Setup) -> None:
    ecr = setup.client("ecr")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": {"AWS": setup.execution_role},
                "Action": "ecr:BatchGetImage",
            }
        ],
    }
    ecr.create_repository(repositoryName="guarded")
    with setup.server.client() as client:
        setup.image.push(client, "guarded", "1.0")
    ecr.set_repository_policy(repositoryName="guarded", policyText=json.dumps(policy))
    definition = register(setup, "denied", {"image": setup.ecr_uri("guarded")})
    task = run_to_stop(setup, definition)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotPullContainerError: ")
    assert "pull access denied for" in task["stoppedReason"]
    assert "pullStartedAt" in task and "pullStoppedAt" in task
    assert "startedAt" not in task


def test_a_missing_image_says_so(setup: Setup) -> None:
    definition = register(setup, "missing", {"image": setup.ecr_uri(tag="9.9")})
    task = run_to_stop(setup, definition)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"] == (
        f"CannotPullContainerError: Error response from daemon: manifest for "
        f"{setup.ecr_uri(tag='9.9')} not found: manifest unknown: Requested image not found"
    )


def test_stop_task_stops_a_running_task(setup: Setup) -> None:
    ecs = setup.client("ecs")
    definition = register(setup, "sleeper", {"command": ["sleep", "600"], "stopTimeout": 2})
    task = ecs.run_task(cluster="agents", taskDefinition=definition)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(
        cluster="agents", tasks=[task], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    ecs.stop_task(cluster="agents", task=task, reason="no longer needed")
    ecs.get_waiter("tasks_stopped").wait(
        cluster="agents", tasks=[task], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    found = ecs.describe_tasks(cluster="agents", tasks=[task])["tasks"][0]
    assert (found["stopCode"], found["stoppedReason"]) == ("UserInitiated", "no longer needed")
    assert found["containers"][0]["exitCode"] == 137  # sleep as PID 1 ignores SIGTERM


def test_network_mode_none_has_only_loopback(setup: Setup) -> None:
    command = ["sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1"]
    definition = register(setup, "isolated", {"command": command}, networkMode="none")
    task = run_to_stop(setup, definition)
    assert [line.strip() for line in lines_of(setup, task)] == ["lo"]


def test_the_task_role_credentials_reach_the_task_only(setup: Setup) -> None:
    fetch = (
        'wget -q -O - --header "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" '
        "$AWS_CONTAINER_CREDENTIALS_FULL_URI; echo; "
        'wget -q -O - --header "Authorization: wrong" $AWS_CONTAINER_CREDENTIALS_FULL_URI '
        "|| echo refused"
    )
    definition = register(
        setup, "with-role", {"command": ["sh", "-c", fetch]}, taskRoleArn=setup.task_role
    )
    task = run_to_stop(setup, definition)
    lines = lines_of(setup, task)
    assert lines[-1] == "refused"
    credentials = json.loads(lines[0])
    assert credentials["RoleArn"] == setup.task_role
    sts = setup.server.sts_client(
        key=credentials["AccessKeyId"],
        secret=credentials["SecretAccessKey"],
        token=credentials["Token"],
    )
    task_id = task["taskArn"].rpartition("/")[2]
    assert sts.get_caller_identity()["Arn"] == (
        f"arn:aws:sts::{setup.account}:assumed-role/appTaskRole/{task_id}"
    )


def test_an_essential_container_stops_the_task(setup: Setup) -> None:
    ecs = setup.client("ecs")
    side = {
        "name": "side",
        "image": setup.ecr_uri(),
        "essential": False,
        "command": ["sh", "-c", "exit 2"],
    }
    main = {
        "name": "main",
        "image": setup.ecr_uri(),
        "command": ["sh", "-c", "sleep 1; exit 0"],
    }
    definition = ecs.register_task_definition(
        family="two",
        networkMode="host",
        executionRoleArn=setup.execution_role,
        containerDefinitions=[side, main],
    )["taskDefinition"]["taskDefinitionArn"]
    task = run_to_stop(setup, definition)
    codes = {c["name"]: c.get("exitCode") for c in task["containers"]}
    # The non-essential container's exit left the task running until `main` exited.
    assert codes == {"side": 2, "main": 0}
    assert task["stopCode"] == "EssentialContainerExited"


def test_an_execution_role_without_a_token_fails_the_task(setup: Setup) -> None:
    bare = make_role(setup.client("iam"), "bareExecutionRole")
    definition = setup.client("ecs").register_task_definition(
        family="no-token",
        executionRoleArn=bare,
        networkMode="host",
        containerDefinitions=[{"name": "main", "image": setup.ecr_uri()}],
    )["taskDefinition"]["taskDefinitionArn"]
    task = run_to_stop(setup, definition)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith(
        "ResourceInitializationError: unable to pull secrets or registry auth: "
    )
    assert "ecr:GetAuthorizationToken" in task["stoppedReason"]
