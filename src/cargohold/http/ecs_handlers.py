"""The handlers of the ECS API: parse, call one service, shape the answer."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cargohold.domain.ecs import InvalidParameter, cluster_name, resource_id
from cargohold.http.awsfront import Authenticator
from cargohold.http.awsservice import AwsCall, AwsService, Handler
from cargohold.http.ecs import ecs_service
from cargohold.http.ecs_agent import EcsAgentRoute
from cargohold.ports import Metadata, TaskFilter
from cargohold.service.authz import Authorizer, enforcing
from cargohold.service.ecs import EcsService
from cargohold.service.ecs_definitions import TaskDefinitionService
from cargohold.service.ecs_roles import TaskRoles
from cargohold.service.ecs_tasks import TaskCredentials, TaskService
from cargohold.service.sts import StsService

_PAGE = 100


@dataclass(frozen=True, slots=True)
class EcsServices:
    ecs: EcsService
    definitions: TaskDefinitionService
    tasks: TaskService


def page(call: AwsCall, items: list[str], name: str) -> dict[str, Any]:
    """A listing with ECS's nextToken/maxResults paging; the token is opaque."""
    start = 0
    token = call.params.get("nextToken")
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode())
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidParameter("Invalid nextToken") from None
    size = int(call.params.get("maxResults") or _PAGE)
    result: dict[str, Any] = {name: items[start : start + size]}
    if start + size < len(items):
        result["nextToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return result


def _with_tags(call: AwsCall) -> bool:
    return "TAGS" in (call.params.get("include") or [])


def _cluster(call: AwsCall) -> str:
    return cluster_name(call.params.get("cluster"))


def cluster_handlers(s: EcsServices) -> dict[str, Handler]:
    async def create_cluster(call: AwsCall) -> dict[str, Any]:
        name = call.params.get("clusterName") or "default"
        tags = list(call.params.get("tags") or [])
        settings = list(call.params.get("settings") or [])
        return {"cluster": await s.ecs.create_cluster(call.account, name, tags, settings)}

    async def describe_clusters(call: AwsCall) -> dict[str, Any]:
        names = [cluster_name(n) for n in call.params.get("clusters") or ["default"]]
        found, failures = await s.ecs.describe_clusters(call.account, names, _with_tags(call))
        return {"clusters": found, "failures": failures}

    async def list_clusters(call: AwsCall) -> dict[str, Any]:
        return page(call, await s.ecs.list_clusters(call.account), "clusterArns")

    async def delete_cluster(call: AwsCall) -> dict[str, Any]:
        return {"cluster": await s.ecs.delete_cluster(call.account, _cluster(call))}

    return {
        "CreateCluster": create_cluster,
        "DescribeClusters": describe_clusters,
        "ListClusters": list_clusters,
        "DeleteCluster": delete_cluster,
    }


def definition_handlers(s: EcsServices) -> dict[str, Handler]:
    async def register(call: AwsCall) -> dict[str, Any]:
        document, tags = await s.definitions.register(call.principal, call.params, call.record)
        return {"taskDefinition": document, "tags": tags}

    async def describe(call: AwsCall) -> dict[str, Any]:
        reference = str(call.params["taskDefinition"])
        document, tags = await s.definitions.describe(call.account, reference)
        return {"taskDefinition": document, **({"tags": tags} if _with_tags(call) else {})}

    async def list_definitions(call: AwsCall) -> dict[str, Any]:
        arns = await s.definitions.list_arns(
            call.account,
            family=call.params.get("familyPrefix"),
            status=call.params.get("status") or "ACTIVE",
            descending=call.params.get("sort") == "DESC",
        )
        return page(call, arns, "taskDefinitionArns")

    async def list_families(call: AwsCall) -> dict[str, Any]:
        families = await s.definitions.families(
            call.account,
            prefix=call.params.get("familyPrefix"),
            status=call.params.get("status") or "ALL",
        )
        return page(call, families, "families")

    async def deregister(call: AwsCall) -> dict[str, Any]:
        reference = str(call.params["taskDefinition"])
        return {"taskDefinition": await s.definitions.deregister(call.account, reference)}

    async def delete(call: AwsCall) -> dict[str, Any]:
        references = [str(r) for r in call.params["taskDefinitions"]]
        deleted, failures = await s.definitions.delete(call.account, references)
        return {"taskDefinitions": deleted, "failures": failures}

    return {
        "RegisterTaskDefinition": register,
        "DescribeTaskDefinition": describe,
        "ListTaskDefinitions": list_definitions,
        "ListTaskDefinitionFamilies": list_families,
        "DeregisterTaskDefinition": deregister,
        "DeleteTaskDefinitions": delete,
    }


def task_handlers(s: EcsServices) -> dict[str, Handler]:
    async def run_task(call: AwsCall) -> dict[str, Any]:
        tasks = await s.tasks.run_task(call.principal, _cluster(call), call.params, call.record)
        return {"tasks": tasks, "failures": []}

    async def describe_tasks(call: AwsCall) -> dict[str, Any]:
        ids = [resource_id(str(t), "task") for t in call.params["tasks"]]
        found, failures = await s.tasks.describe_tasks(
            call.account, _cluster(call), ids, _with_tags(call)
        )
        return {"tasks": found, "failures": failures}

    async def list_tasks(call: AwsCall) -> dict[str, Any]:
        instance = call.params.get("containerInstance")
        where = TaskFilter(
            _cluster(call),
            container_instance=resource_id(instance, "container-instance") if instance else None,
            family=call.params.get("family"),
            desired_status=call.params.get("desiredStatus") or "RUNNING",
            started_by=call.params.get("startedBy"),
        )
        return page(call, await s.tasks.list_tasks(call.account, where), "taskArns")

    async def stop_task(call: AwsCall) -> dict[str, Any]:
        task_id = resource_id(str(call.params["task"]), "task")
        reason = call.params.get("reason")
        return {"task": await s.tasks.stop_task(call.account, _cluster(call), task_id, reason)}

    async def submit_task_state_change(call: AwsCall) -> dict[str, Any]:
        task_id = resource_id(str(call.params.get("task") or ""), "task")
        await s.tasks.state_change(call.account, _cluster(call), task_id, call.params)
        return {"acknowledgment": "ACK"}

    return {
        "RunTask": run_task,
        "DescribeTasks": describe_tasks,
        "ListTasks": list_tasks,
        "StopTask": stop_task,
        "SubmitTaskStateChange": submit_task_state_change,
    }


def instance_handlers(s: EcsServices) -> dict[str, Handler]:
    async def register(call: AwsCall) -> dict[str, Any]:
        found = await s.ecs.register_instance(call.account, _cluster(call), call.params)
        return {"containerInstance": found}

    async def deregister(call: AwsCall) -> dict[str, Any]:
        instance = resource_id(str(call.params["containerInstance"]), "container-instance")
        force = bool(call.params.get("force"))
        found = await s.ecs.deregister_instance(call.account, _cluster(call), instance, force)
        return {"containerInstance": found}

    async def list_instances(call: AwsCall) -> dict[str, Any]:
        status = call.params.get("status")
        query = call.params.get("filter")
        arns = await s.ecs.list_instances(call.account, _cluster(call), status, query)
        return page(call, arns, "containerInstanceArns")

    async def describe(call: AwsCall) -> dict[str, Any]:
        ids = [resource_id(str(i), "container-instance") for i in call.params["containerInstances"]]
        found, failures = await s.ecs.describe_instances(
            call.account, _cluster(call), ids, _with_tags(call)
        )
        return {"containerInstances": found, "failures": failures}

    return {
        "RegisterContainerInstance": register,
        "DeregisterContainerInstance": deregister,
        "ListContainerInstances": list_instances,
        "DescribeContainerInstances": describe,
    }


def tag_handlers(s: EcsServices) -> dict[str, Handler]:
    async def tag(call: AwsCall) -> dict[str, Any]:
        arn = str(call.params["resourceArn"])
        await s.ecs.change_tags(call.account, arn, list(call.params["tags"]), [])
        return {}

    async def untag(call: AwsCall) -> dict[str, Any]:
        arn = str(call.params["resourceArn"])
        await s.ecs.change_tags(call.account, arn, [], list(call.params["tagKeys"]))
        return {}

    async def list_tags(call: AwsCall) -> dict[str, Any]:
        return {"tags": await s.ecs.tags(call.account, str(call.params["resourceArn"]))}

    return {"TagResource": tag, "UntagResource": untag, "ListTagsForResource": list_tags}


def ecs_handlers(s: EcsServices) -> dict[str, Handler]:
    return {
        **cluster_handlers(s),
        **definition_handlers(s),
        **task_handlers(s),
        **instance_handlers(s),
        **tag_handlers(s),
    }


@dataclass(frozen=True, slots=True)
class EcsApi:
    """ECS on one node: its API on `POST /`, and what agents ask for at `/_ecs/credentials`."""

    service: AwsService
    agent: EcsAgentRoute


def build_ecs_api(
    store: Metadata,
    clock: Callable[[], float],
    *,
    region: str,
    authorizer: Authorizer,
    sts: StsService,
    authenticator: Authenticator,
) -> EcsApi:
    """The ECS API over the services of one node."""
    roles = TaskRoles(authorizer, sts)
    definitions = TaskDefinitionService(store, clock, region=region, roles=roles)
    services = EcsServices(
        EcsService(store, clock, region=region),
        definitions,
        TaskService(store, clock, region=region, definitions=definitions, roles=roles),
    )
    agent = EcsAgentRoute(
        TaskCredentials(store, roles, region=region),
        authenticator,
        enforcing(authorizer),
        region=region,
    )
    return EcsApi(ecs_service(ecs_handlers(services)), agent)
