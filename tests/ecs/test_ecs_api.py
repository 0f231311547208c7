"""The ECS API through boto3 against a live server: clusters, task definitions and their
revisions, container instances, tasks and their statuses, tagging, boto3's waiters; passing
roles (iam:PassRole, the ecs-tasks.amazonaws.com trust); ECS's error types."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from support.ecs import make_role
from support.server import RegistryServer

CONTAINER = {"name": "app", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.0"}


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_clusters(ecs: Any) -> None:
    created = ecs.create_cluster(clusterName="c1", tags=[{"key": "team", "value": "a"}])
    cluster = created["cluster"]
    assert cluster["clusterName"] == "c1"
    assert cluster["status"] == "ACTIVE"
    assert cluster["clusterArn"].endswith(":cluster/c1")
    assert cluster["clusterArn"].startswith("arn:aws:ecs:")
    # Creating it again answers the same cluster.
    assert ecs.create_cluster(clusterName="c1")["cluster"]["clusterArn"] == cluster["clusterArn"]
    assert cluster["clusterArn"] in ecs.list_clusters()["clusterArns"]
    described = ecs.describe_clusters(clusters=["c1", "nope"], include=["TAGS"])
    assert [c["clusterName"] for c in described["clusters"]] == ["c1"]
    assert described["clusters"][0]["tags"] == [{"key": "team", "value": "a"}]
    assert described["failures"][0]["reason"] == "MISSING"
    assert described["failures"][0]["arn"].endswith(":cluster/nope")
    deleted = ecs.delete_cluster(cluster="c1")["cluster"]
    assert deleted["status"] == "INACTIVE"
    assert error_of(lambda: ecs.delete_cluster(cluster="c1")) == (
        "ClusterNotFoundException",
        "Cluster not found.",
    )
    assert error_of(lambda: ecs.list_tasks(cluster="c1"))[0] == "ClusterNotFoundException"


def test_task_definition_revisions(ecs: Any) -> None:
    first = ecs.register_task_definition(family="web", containerDefinitions=[CONTAINER])
    definition = first["taskDefinition"]
    assert definition["revision"] == 1
    assert definition["taskDefinitionArn"].endswith(":task-definition/web:1")
    assert definition["containerDefinitions"][0]["essential"] is True
    assert definition["status"] == "ACTIVE"
    second = ecs.register_task_definition(
        family="web", containerDefinitions=[{**CONTAINER, "command": ["echo", "hi"]}]
    )["taskDefinition"]
    assert second["revision"] == 2
    latest = ecs.describe_task_definition(taskDefinition="web")["taskDefinition"]
    assert latest["revision"] == 2
    assert latest["containerDefinitions"][0]["command"] == ["echo", "hi"]
    by_arn = ecs.describe_task_definition(taskDefinition=definition["taskDefinitionArn"])
    assert by_arn["taskDefinition"]["revision"] == 1
    assert ecs.list_task_definition_families(familyPrefix="we")["families"] == ["web"]

    ecs.deregister_task_definition(taskDefinition="web:2")
    assert ecs.describe_task_definition(taskDefinition="web")["taskDefinition"]["revision"] == 1
    active = ecs.list_task_definitions(familyPrefix="web")["taskDefinitionArns"]
    assert [a.rpartition(":")[2] for a in active] == ["1"]
    inactive = ecs.list_task_definitions(familyPrefix="web", status="INACTIVE")
    assert [a.rpartition(":")[2] for a in inactive["taskDefinitionArns"]] == ["2"]

    deleted = ecs.delete_task_definitions(taskDefinitions=["web:2", "web:1"])
    assert [d["status"] for d in deleted["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
    assert "still in ACTIVE status" in deleted["failures"][0]["reason"]
    # A deleted revision is never reused.
    third = ecs.register_task_definition(family="web", containerDefinitions=[CONTAINER])
    assert third["taskDefinition"]["revision"] == 3
    assert error_of(lambda: ecs.describe_task_definition(taskDefinition="web:2")) == (
        "ClientException",
        "Unable to describe task definition.",
    )


def test_bad_task_definitions(ecs: Any) -> None:
    code, message = error_of(
        lambda: ecs.register_task_definition(family="bad name", containerDefinitions=[CONTAINER])
    )
    assert (code, message.startswith("Family contains invalid characters")) == (
        "ClientException",
        True,
    )
    code, _ = error_of(
        lambda: ecs.register_task_definition(
            family="x", containerDefinitions=[{**CONTAINER, "essential": False}]
        )
    )
    assert code == "ClientException"


def test_a_request_the_model_refuses(ecs_server: RegistryServer) -> None:
    creds = ecs_server.admin_credentials()
    raw = boto3.client(
        "ecs",
        endpoint_url=ecs_server.url,
        region_name=creds["AWS_DEFAULT_REGION"],
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        config=BotoConfig(parameter_validation=False, retries={"max_attempts": 1}),
    )
    code, message = error_of(lambda: raw.describe_task_definition())
    assert code == "InvalidParameterException"
    assert "validation error" in message


def _instance(ecs: Any, cluster: str) -> str:
    document = json.dumps({"instanceId": "i-0123456789abcdef0"})
    registered = ecs.register_container_instance(
        cluster=cluster, instanceIdentityDocument=document
    )["containerInstance"]
    assert registered["status"] == "ACTIVE"
    assert registered["ec2InstanceId"] == "i-0123456789abcdef0"
    arn: str = registered["containerInstanceArn"]
    assert f":container-instance/{cluster}/" in arn
    return arn


def test_tasks_are_placed_on_the_least_loaded_instance_and_stopped(ecs: Any) -> None:
    ecs.create_cluster(clusterName="work")
    ecs.register_task_definition(family="job", containerDefinitions=[CONTAINER])
    code, message = error_of(lambda: ecs.run_task(cluster="work", taskDefinition="job"))
    assert (code, message) == (
        "InvalidParameterException",
        "No Container Instances were found in your cluster.",
    )
    first, second = _instance(ecs, "work"), _instance(ecs, "work")
    tasks = ecs.run_task(cluster="work", taskDefinition="job", count=2, startedBy="me")["tasks"]
    assert sorted(t["containerInstanceArn"] for t in tasks) == sorted([first, second])
    task = tasks[0]
    assert ":task/work/" in task["taskArn"]
    assert task["lastStatus"] == "PROVISIONING"
    assert task["desiredStatus"] == "RUNNING"
    assert task["containers"][0]["name"] == "app"
    assert task["group"] == "family:job"
    listed = ecs.list_tasks(cluster="work", containerInstance=first)["taskArns"]
    assert len(listed) == 1
    assert len(ecs.list_tasks(cluster="work", startedBy="me")["taskArns"]) == 2
    assert (
        ecs.describe_container_instances(cluster="work", containerInstances=[first])[
            "containerInstances"
        ][0]["runningTasksCount"]
        == 1
    )

    code, _ = error_of(
        lambda: ecs.list_container_instances(cluster="work", filter="attribute:x == y")
    )
    assert code == "InvalidParameterException"
    code, _ = error_of(
        lambda: ecs.deregister_container_instance(cluster="work", containerInstance=first)
    )
    assert code == "InvalidParameterException"
    stopped = ecs.stop_task(cluster="work", task=task["taskArn"], reason="enough")["task"]
    assert (stopped["desiredStatus"], stopped["stopCode"], stopped["stoppedReason"]) == (
        "STOPPED",
        "UserInitiated",
        "enough",
    )
    ecs.get_waiter("tasks_stopped").wait(
        cluster="work", tasks=[task["taskArn"]], WaiterConfig={"Delay": 1, "MaxAttempts": 5}
    )
    code, message = error_of(lambda: ecs.describe_tasks(cluster="work", tasks=[]))
    assert (code, message) == ("InvalidParameterException", "Tasks cannot be empty.")
    missing = ecs.describe_tasks(cluster="work", tasks=["0" * 32])["failures"]
    assert missing[0]["reason"] == "MISSING"
    code, _ = error_of(lambda: ecs.delete_cluster(cluster="work"))
    assert code == "ClusterContainsContainerInstancesException"


def test_an_agent_reports_a_task_through_its_statuses(ecs: Any) -> None:
    ecs.create_cluster(clusterName="agent")
    ecs.register_task_definition(family="once", containerDefinitions=[CONTAINER])
    _instance(ecs, "agent")
    task = ecs.run_task(cluster="agent", taskDefinition="once")["tasks"][0]["taskArn"]

    def report(status: str, **more: Any) -> None:
        ack = ecs.submit_task_state_change(cluster="agent", task=task, status=status, **more)
        assert ack["acknowledgment"] == "ACK"

    report("PENDING", pullStartedAt=1_700_000_000, pullStoppedAt=1_700_000_001)
    report(
        "RUNNING",
        containers=[{"containerName": "app", "status": "RUNNING", "runtimeId": "abc"}],
    )
    ecs.get_waiter("tasks_running").wait(
        cluster="agent", tasks=[task], WaiterConfig={"Delay": 1, "MaxAttempts": 5}
    )
    report("PENDING")  # late and out of order: ignored
    report(
        "STOPPED",
        reason="Essential container in task exited",
        containers=[{"containerName": "app", "status": "STOPPED", "exitCode": 3}],
    )
    found = ecs.describe_tasks(cluster="agent", tasks=[task])["tasks"][0]
    assert found["lastStatus"] == "STOPPED"
    assert found["stopCode"] == "EssentialContainerExited"
    assert found["containers"][0]["exitCode"] == 3
    assert found["pullStartedAt"].timestamp() == 1_700_000_000
    assert "startedAt" in found and "stoppedAt" in found


def test_tagging(ecs: Any) -> None:
    arn = ecs.create_cluster(clusterName="tagged")["cluster"]["clusterArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "b", "value": "2"}]
    definition = ecs.register_task_definition(
        family="tg", containerDefinitions=[CONTAINER], tags=[{"key": "k", "value": "v"}]
    )["taskDefinition"]["taskDefinitionArn"]
    assert ecs.list_tags_for_resource(resourceArn=definition)["tags"] == [
        {"key": "k", "value": "v"}
    ]
    code, _ = error_of(lambda: ecs.list_tags_for_resource(resourceArn="arn:aws:s3:::bucket"))
    assert code == "InvalidParameterException"


def test_other_operations_are_unsupported(ecs: Any) -> None:
    code, _ = error_of(lambda: ecs.list_services(cluster="default"))
    assert code == "UnsupportedOperationException"


def test_passing_roles(ecs_server: RegistryServer, ecs: Any, iam: Any) -> None:
    execution = make_role(iam, "ecsTaskExecutionRole")
    untrusting = make_role(
        iam,
        "notForEcs",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    ok = ecs.register_task_definition(
        family="roles", executionRoleArn=execution, containerDefinitions=[CONTAINER]
    )
    assert ok["taskDefinition"]["executionRoleArn"] == execution
    code, message = error_of(
        lambda: ecs.register_task_definition(
            family="roles", taskRoleArn=untrusting, containerDefinitions=[CONTAINER]
        )
    )
    assert code == "ClientException"
    assert message.startswith(f"ECS was unable to assume the role '{untrusting}'")

    iam.create_user(UserName="deployer")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="deployer", PolicyName="ecs", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    deployer = ecs_server.aws_client("ecs", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    deployer.register_task_definition(family="plain", containerDefinitions=[CONTAINER])
    code, message = error_of(
        lambda: deployer.register_task_definition(
            family="roles", executionRoleArn=execution, containerDefinitions=[CONTAINER]
        )
    )
    assert code == "AccessDeniedException"
    assert f"iam:PassRole on resource: {execution}" in message
    code, message = error_of(lambda: deployer.run_task(cluster="default", taskDefinition="roles"))
    assert code == "AccessDeniedException"
    assert "iam:PassRole" in message

    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    nobody = ecs_server.aws_client("ecs", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    code, message = error_of(lambda: nobody.list_clusters())
    assert code == "AccessDeniedException"
    assert "ecs:ListClusters" in message
