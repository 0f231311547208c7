"""`POST /_ecs/credentials`: a task's role session for the agent it is placed on, signed with
SigV4 and authorized as ecs:Poll; nothing for a task placed elsewhere, nor for an unsigned or
unauthorized caller."""

from __future__ import annotations

import json
from typing import Any

import boto3
import httpx
import pytest

from cargohold.agent.control import Control, CredentialsError
from support.ecs import make_role
from support.server import RegistryServer

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.0"


def control(server: RegistryServer, key: str, secret: str) -> Control:
    session = boto3.Session(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=server.admin_credentials()["AWS_DEFAULT_REGION"],
    )
    return Control(server.url, session)


def test_task_credentials(ecs_server: RegistryServer, ecs: Any, iam: Any) -> None:
    admin = ecs_server.admin_credentials()
    agent = control(ecs_server, admin["AWS_ACCESS_KEY_ID"], admin["AWS_SECRET_ACCESS_KEY"])
    role = make_role(iam, "routeExecution")
    ecs.create_cluster(clusterName="route")
    ecs.register_task_definition(
        family="route",
        executionRoleArn=role,
        containerDefinitions=[{"name": "app", "image": IMAGE}],
    )
    first = ecs.register_container_instance(cluster="route")["containerInstance"]
    task = ecs.run_task(cluster="route", taskDefinition="route")["tasks"][0]
    placed = task["containerInstanceArn"]
    assert placed == first["containerInstanceArn"]

    found = agent.role_credentials("route", placed, task["taskArn"], "execution")
    assert found.role_arn == role
    sts = ecs_server.sts_client(
        key=found.access_key_id, secret=found.secret_access_key, token=found.token
    )
    task_id = task["taskArn"].rpartition("/")[2]
    assert sts.get_caller_identity()["Arn"].endswith(f":assumed-role/routeExecution/{task_id}")

    with pytest.raises(CredentialsError, match="has no taskRoleArn"):
        agent.role_credentials("route", placed, task["taskArn"], "task")
    other = ecs.register_container_instance(cluster="route")["containerInstance"]
    with pytest.raises(CredentialsError, match="InvalidParameterException"):
        agent.role_credentials("route", other["containerInstanceArn"], task["taskArn"], "execution")

    iam.create_user(UserName="stranger")
    key = iam.create_access_key(UserName="stranger")["AccessKey"]
    stranger = control(ecs_server, key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(CredentialsError, match=r"AccessDeniedException.*ecs:Poll"):
        stranger.role_credentials("route", placed, task["taskArn"], "execution")

    body = {"cluster": "route", "containerInstance": placed, "task": task["taskArn"]}
    unsigned = httpx.post(ecs_server.url + "/_ecs/credentials", content=json.dumps(body))
    assert unsigned.status_code in (400, 403)
    assert "AccessKeyId" not in unsigned.text


def deputy_trust(account: str, source_arn: str) -> str:
    """ECS's trust with the confused-deputy conditions AWS recommends."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {"aws:SourceArn": source_arn},
                    },
                }
            ],
        }
    )


def test_roles_are_assumed_with_the_source_account_and_arn(
    ecs_server: RegistryServer, ecs: Any, iam: Any
) -> None:
    """A trust policy that names the account and its ECS resources lets ECS assume the role
    (registration, RunTask and the task's session); one naming another account does not."""
    admin = ecs_server.admin_credentials()
    agent = control(ecs_server, admin["AWS_ACCESS_KEY_ID"], admin["AWS_SECRET_ACCESS_KEY"])
    account = boto3.client(
        "sts",
        endpoint_url=ecs_server.url,
        aws_access_key_id=admin["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
        region_name=admin["AWS_DEFAULT_REGION"],
    ).get_caller_identity()["Account"]
    region = admin["AWS_DEFAULT_REGION"]
    scoped = make_role(
        iam, "scopedExecution", deputy_trust(account, f"arn:aws:ecs:{region}:{account}:*")
    )
    only_tasks = make_role(
        iam, "tasksOnly", deputy_trust(account, f"arn:aws:ecs:{region}:{account}:task/deputy/*")
    )
    foreign = make_role(iam, "foreignExecution", deputy_trust("999999999999", "*"))
    ecs.create_cluster(clusterName="deputy")
    ecs.register_container_instance(cluster="deputy")
    ecs.register_task_definition(
        family="deputy",
        executionRoleArn=scoped,
        containerDefinitions=[{"name": "a", "image": IMAGE}],
    )
    task = ecs.run_task(cluster="deputy", taskDefinition="deputy")["tasks"][0]
    found = agent.role_credentials(
        "deputy", task["containerInstanceArn"], task["taskArn"], "execution"
    )
    assert found.role_arn == scoped

    with pytest.raises(ecs.exceptions.ClientException, match="unable to assume the role"):
        ecs.register_task_definition(
            family="foreign",
            executionRoleArn=foreign,
            containerDefinitions=[{"name": "a", "image": IMAGE}],
        )
    # A role trusting only this cluster's tasks: not the family it is registered under.
    with pytest.raises(ecs.exceptions.ClientException, match="unable to assume the role"):
        ecs.register_task_definition(
            family="tasks-only",
            taskRoleArn=only_tasks,
            containerDefinitions=[{"name": "a", "image": IMAGE}],
        )
