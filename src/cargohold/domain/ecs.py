"""ECS's names, ARNs, statuses and errors, as the ECS API spells them.

ARNs take ECS's long forms: `arn:aws:ecs:REGION:ACCOUNT:cluster/NAME`,
`…:task-definition/FAMILY:REVISION`, `…:task/CLUSTER/ID`, `…:container-instance/CLUSTER/ID` and
`…:container/CLUSTER/TASK/ID`. A parameter may name a resource by its ARN or by its short name
(a cluster's name, `family` or `family:revision`, a task's id).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from cargohold.domain.errors import RegistryError

DEFAULT_CLUSTER: Final = "default"
#: The service principal tasks' roles must trust, and which pulls and runs for them.
ECS_TASKS_PRINCIPAL: Final = "ecs-tasks.amazonaws.com"

# lastStatus values, in the order a task moves through them.
PROVISIONING: Final = "PROVISIONING"
PENDING: Final = "PENDING"
RUNNING: Final = "RUNNING"
DEPROVISIONING: Final = "DEPROVISIONING"
STOPPED: Final = "STOPPED"
TASK_STATUSES: Final = (PROVISIONING, PENDING, RUNNING, DEPROVISIONING, STOPPED)

# stopCode values.
TASK_FAILED_TO_START: Final = "TaskFailedToStart"
ESSENTIAL_CONTAINER_EXITED: Final = "EssentialContainerExited"
USER_INITIATED: Final = "UserInitiated"
TERMINATION_NOTICE: Final = "TerminationNotice"

_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}", re.ASCII)
_FAMILY = re.compile(r"[A-Za-z0-9_-]{1,255}", re.ASCII)
_CONTAINER_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}", re.ASCII)
_ID = re.compile(r"[a-f0-9]{32}", re.ASCII)
_ARN = re.compile(r"arn:aws:ecs:([a-z0-9-]+):(\d{12}):([a-z-]+)/(.+)", re.ASCII)


class EcsError(RegistryError):
    """An ECS error; `code` is its `__type`."""

    code = "ClientException"


class ClientError(EcsError):
    code = "ClientException"


class InvalidParameter(EcsError):
    code = "InvalidParameterException"


class ClusterNotFound(EcsError):
    code = "ClusterNotFoundException"

    def __init__(self, message: str = "Cluster not found.") -> None:
        super().__init__(message)


class ClusterContainsContainerInstances(EcsError):
    code = "ClusterContainsContainerInstancesException"


class ClusterContainsTasks(EcsError):
    code = "ClusterContainsTasksException"


@dataclass(frozen=True, slots=True)
class EcsArn:
    region: str
    account: str
    kind: str
    #: What follows `kind/`: `NAME`, `FAMILY:REV`, `CLUSTER/ID`.
    path: str

    def __str__(self) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:{self.kind}/{self.path}"


def parse_arn(text: str) -> EcsArn | None:
    found = _ARN.fullmatch(text)
    if found is None:
        return None
    return EcsArn(found.group(1), found.group(2), found.group(3), found.group(4))


def host_terminated(ec2_instance_id: str) -> str:
    """The `stoppedReason` of a task stopped because its container instance went away."""
    return f"Host EC2 (instance {ec2_instance_id}) terminated."


def cluster_arn(region: str, account: str, name: str) -> str:
    return str(EcsArn(region, account, "cluster", name))


def task_definition_arn(region: str, account: str, family: str, revision: int) -> str:
    return str(EcsArn(region, account, "task-definition", f"{family}:{revision}"))


def task_definition_family_arn(region: str, account: str, family: str) -> str:
    """A family of task definitions, every revision (the form ECS's ARNs take without one)."""
    return str(EcsArn(region, account, "task-definition", family))


def task_arn(region: str, account: str, cluster: str, task_id: str) -> str:
    return str(EcsArn(region, account, "task", f"{cluster}/{task_id}"))


def container_instance_arn(region: str, account: str, cluster: str, instance_id: str) -> str:
    return str(EcsArn(region, account, "container-instance", f"{cluster}/{instance_id}"))


def container_arn(region: str, account: str, cluster: str, task_id: str, cid: str) -> str:
    return str(EcsArn(region, account, "container", f"{cluster}/{task_id}/{cid}"))


def cluster_name(reference: str | None) -> str:
    """The cluster a parameter names (by name or ARN; absent: `default`)."""
    if not reference:
        return DEFAULT_CLUSTER
    arn = parse_arn(reference)
    if arn is not None:
        if arn.kind != "cluster":
            raise InvalidParameter(f"Invalid cluster: {reference}")
        # The name goes into the resource ARN the call is authorized on: the rules of a name.
        reference = arn.path
    if _CLUSTER_NAME.fullmatch(reference) is None:
        raise ClusterNotFound()
    return reference


def check_cluster_name(name: str) -> None:
    if _CLUSTER_NAME.fullmatch(name) is None:
        raise InvalidParameter(
            "Cluster name can only contain alphanumeric characters, hyphens and underscores "
            "and must be 1-255 characters long."
        )


def check_family(family: str) -> None:
    if _FAMILY.fullmatch(family) is None:
        raise ClientError(
            "Family contains invalid characters. Up to 255 letters (uppercase and lowercase), "
            "numbers, hyphens, and underscores are allowed."
        )


def check_container_name(name: str) -> None:
    if _CONTAINER_NAME.fullmatch(name) is None:
        raise ClientError(
            "Container name contains invalid characters. Up to 255 letters (uppercase and "
            "lowercase), numbers, hyphens, and underscores are allowed."
        )


def task_definition_reference(reference: str) -> tuple[str, int | None]:
    """(family, revision) of `family`, `family:revision` or a task definition ARN; revision
    None: the latest ACTIVE one."""
    arn = parse_arn(reference)
    text = reference
    if arn is not None:
        if arn.kind != "task-definition":
            raise ClientError(f"Invalid revision number. Number: {reference}")
        text = arn.path
    family, colon, revision = text.partition(":")
    if _FAMILY.fullmatch(family) is None:
        raise ClientError("Unable to describe task definition.")
    if not colon:
        return family, None
    if not revision.isdigit() or int(revision) < 1:
        raise ClientError(f"Invalid revision number. Number: {revision}")
    return family, int(revision)


def resource_id(reference: str, kind: str) -> str:
    """A task's or container instance's id, from its ARN or the id itself."""
    arn = parse_arn(reference)
    if arn is not None:
        cluster, _, found = arn.path.rpartition("/")
        if arn.kind != kind or _CLUSTER_NAME.fullmatch(cluster) is None:
            raise InvalidParameter(f"Invalid id: {reference}")
        if _ID.fullmatch(found) is None:
            raise InvalidParameter(f"Invalid id: {reference}")
        return found
    if _ID.fullmatch(reference) is None:
        raise InvalidParameter(f"Invalid id: {reference}")
    return reference


def is_valid_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None
