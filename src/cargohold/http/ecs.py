"""Amazon ECS as `cargohold.http.awsfront` serves it: AWS JSON 1.1 with the target prefix
`AmazonEC2ContainerServiceV20141113`, validated by botocore's `ecs` model.

Each call is authorized as `ecs:<Operation>` on the resources it acts on, as IAM's reference
for ECS names them: the cluster for cluster-scoped calls, each task for DescribeTasks and
StopTask, the task definition for RunTask, the tagged resource for tagging; `*` for the calls
of no resource (CreateCluster, ListClusters, the task-definition calls). `ecs:cluster` is in
the context of every call that names a cluster, and the tags a call sets are
`aws:RequestTag/…`. Errors carry ECS's `__type` names.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.model import ServiceModel

from cargohold.domain.ecs import (
    EcsArn,
    EcsError,
    InvalidParameter,
    cluster_arn,
    cluster_name,
    task_arn,
    task_definition_reference,
)
from cargohold.domain.errors import AccessDenied, RegistryError
from cargohold.domain.policy import request_tag_context
from cargohold.http.awsservice import AwsCall, AwsError, AwsService, Handler, ValidationFailed

log = logging.getLogger(__name__)

SERVICE = "ecs"
_CLUSTER_SCOPED = frozenset(
    {
        "DeleteCluster",
        "RegisterContainerInstance",
        "DeregisterContainerInstance",
        "ListContainerInstances",
        "DescribeContainerInstances",
        "ListTasks",
        "SubmitTaskStateChange",
    }
)
_TAGGING = frozenset({"TagResource", "UntagResource", "ListTagsForResource"})
_NO_CLUSTER = frozenset({"CreateCluster", "ListClusters", "DescribeClusters", *_TAGGING})


def _task_ids(call: AwsCall) -> list[str]:
    tasks = call.params["tasks"] if "tasks" in call.params else [call.params["task"]]
    if not tasks:
        raise InvalidParameter("Tasks cannot be empty.")
    return [str(t).rpartition("/")[2] for t in tasks]


async def _resources(call: AwsCall) -> Sequence[str]:
    op, params, region, account = call.operation, call.params, call.region, call.account
    if op in _TAGGING:
        return [str(params["resourceArn"])]
    if op == "DescribeClusters":
        names = params.get("clusters") or ["default"]
        return [cluster_arn(region, account, cluster_name(n)) for n in dict.fromkeys(names)]
    if op in _CLUSTER_SCOPED:
        return [cluster_arn(region, account, cluster_name(params.get("cluster")))]
    if op in ("DescribeTasks", "StopTask"):
        cluster = cluster_name(params.get("cluster"))
        return [task_arn(region, account, cluster, t) for t in dict.fromkeys(_task_ids(call))]
    if op == "RunTask":
        family, revision = task_definition_reference(str(params["taskDefinition"]))
        return [str(EcsArn(region, account, "task-definition", f"{family}:{revision or '*'}"))]
    return ["*"]


def ecs_context(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if operation not in _NO_CLUSTER and "cluster" in params:
        context["ecs:cluster"] = str(params["cluster"])
    if operation in ("CreateCluster", "RegisterTaskDefinition", "RunTask", "TagResource"):
        tags = {t.get("key", ""): t.get("value", "") for t in params.get("tags") or []}
        if tags or operation == "TagResource":
            context.update(request_tag_context(tags))
    elif operation == "UntagResource":
        context["aws:TagKeys"] = tuple(params.get("tagKeys") or [])
    return context


def ecs_error(exc: RegistryError, model: ServiceModel) -> AwsError:
    if isinstance(exc, EcsError):
        return AwsError(exc.code, str(exc))
    if isinstance(exc, AccessDenied):
        return AwsError("AccessDeniedException", exc.message)
    log.error("unexpected error in ecs: %r", exc)
    return AwsError("ServerException", "Service Unavailable. Please try again later.", 500)


def ecs_invalid(exc: ValidationFailed, model: ServiceModel) -> AwsError:
    return AwsError("InvalidParameterException", exc.message)


def ecs_service(handlers: Mapping[str, Handler]) -> AwsService:
    """ECS with these handlers (`ecs_handlers.ecs_handlers`); the model's other operations
    answer as unsupported."""
    return AwsService(
        SERVICE,
        handlers,
        resources=_resources,
        context=ecs_context,
        errors=ecs_error,
        invalid=ecs_invalid,
    )
