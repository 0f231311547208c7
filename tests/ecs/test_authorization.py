"""Every ECS and CloudWatch Logs operation served is authorized through the one Authorizer: a
caller no policy allows anything gets AccessDeniedException naming the operation's action and
the resource IAM's reference gives it, before anything is read or changed."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from cargohold.http.ecs_handlers import ecs_handlers
from cargohold.http.logs import event_handlers, group_handlers
from support.server import RegistryServer

TASK = "0" * 32
CONTAINER = {"name": "app", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.0"}

#: operation: (parameters, the end of the resource ARN the denial names: `*`, or after `:`).
ECS: dict[str, tuple[dict[str, Any], str]] = {
    "CreateCluster": ({"clusterName": "denied"}, "*"),
    "DescribeClusters": ({"clusters": ["denied"]}, "cluster/denied"),
    "ListClusters": ({}, "*"),
    "DeleteCluster": ({"cluster": "denied"}, "cluster/denied"),
    "RegisterTaskDefinition": ({"family": "denied", "containerDefinitions": [CONTAINER]}, "*"),
    "DescribeTaskDefinition": ({"taskDefinition": "denied:1"}, "*"),
    "ListTaskDefinitions": ({}, "*"),
    "ListTaskDefinitionFamilies": ({}, "*"),
    "DeregisterTaskDefinition": ({"taskDefinition": "denied:1"}, "*"),
    "DeleteTaskDefinitions": ({"taskDefinitions": ["denied:1"]}, "*"),
    "RunTask": ({"cluster": "denied", "taskDefinition": "denied:1"}, "task-definition/denied:1"),
    "DescribeTasks": ({"cluster": "denied", "tasks": [TASK]}, f"task/denied/{TASK}"),
    "ListTasks": ({"cluster": "denied"}, "cluster/denied"),
    "StopTask": ({"cluster": "denied", "task": TASK}, f"task/denied/{TASK}"),
    "SubmitTaskStateChange": ({"cluster": "denied", "task": TASK}, "cluster/denied"),
    "RegisterContainerInstance": ({"cluster": "denied"}, "cluster/denied"),
    "DeregisterContainerInstance": (
        {"cluster": "denied", "containerInstance": TASK},
        "cluster/denied",
    ),
    "ListContainerInstances": ({"cluster": "denied"}, "cluster/denied"),
    "DescribeContainerInstances": (
        {"cluster": "denied", "containerInstances": [TASK]},
        "cluster/denied",
    ),
    "TagResource": ({"resourceArn": "CLUSTER", "tags": [{"key": "k"}]}, "cluster/denied"),
    "UntagResource": ({"resourceArn": "CLUSTER", "tagKeys": ["k"]}, "cluster/denied"),
    "ListTagsForResource": ({"resourceArn": "CLUSTER"}, "cluster/denied"),
}

_STREAM = {"logGroupName": "denied", "logStreamName": "s"}
LOGS: dict[str, tuple[dict[str, Any], str]] = {
    "CreateLogGroup": ({"logGroupName": "denied"}, "log-group:denied"),
    "DescribeLogGroups": ({}, "*"),
    "DeleteLogGroup": ({"logGroupName": "denied"}, "log-group:denied"),
    "CreateLogStream": (_STREAM, "log-group:denied:log-stream:s"),
    "DescribeLogStreams": ({"logGroupName": "denied"}, "log-group:denied"),
    "PutLogEvents": (
        {**_STREAM, "logEvents": [{"timestamp": 1, "message": "m"}]},
        "log-group:denied:log-stream:s",
    ),
    "GetLogEvents": (_STREAM, "log-group:denied:log-stream:s"),
    "FilterLogEvents": ({"logGroupName": "denied"}, "log-group:denied"),
}


@pytest.fixture(scope="module")
def nobody(ecs_server: RegistryServer) -> dict[str, str]:
    iam = ecs_server.iam_client()
    iam.create_user(UserName="authz-nobody")
    key = iam.create_access_key(UserName="authz-nobody")["AccessKey"]
    return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def test_the_tables_cover_every_operation_served() -> None:
    # The handler tables only close over their services: built with none, they name the
    # operations served.
    assert set(ECS) == set(ecs_handlers(None))  # type: ignore[arg-type]
    served = {**group_handlers(None), **event_handlers(None)}  # type: ignore[arg-type]
    assert set(LOGS) == set(served)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


@pytest.mark.parametrize(
    ("service", "operation"),
    [("ecs", name) for name in ECS] + [("logs", name) for name in LOGS],
)
def test_an_operation_is_denied_without_a_policy(
    ecs_server: RegistryServer, nobody: dict[str, str], service: str, operation: str
) -> None:
    client = ecs_server.aws_client(service, **nobody)
    account = ecs_server.sts_client().get_caller_identity()["Account"]
    region = ecs_server.admin_credentials()["AWS_DEFAULT_REGION"]
    params, resource = (ECS if service == "ecs" else LOGS)[operation]
    cluster = f"arn:aws:ecs:{region}:{account}:cluster/denied"
    params = {k: cluster if v == "CLUSTER" else v for k, v in params.items()}
    with pytest.raises(ClientError) as caught:
        getattr(client, _snake(operation))(**params)
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    expected = "*" if resource == "*" else f"arn:aws:{service}:{region}:{account}:{resource}"
    assert f"perform: {service}:{operation} on resource: {expected} " in error["Message"] + " "
