"""ECS tasks: RunTask places them on container instances, agents report their progress
(SubmitTaskStateChange), StopTask asks for them to stop.

A task's `lastStatus` only moves forward through PROVISIONING, PENDING, RUNNING,
DEPROVISIONING and STOPPED. Placement is simple: each task goes to the ACTIVE container
instance of the cluster with the fewest tasks not yet STOPPED. A task that stops is given its
`stopCode`: `UserInitiated` when StopTask asked for it, `TaskFailedToStart` when it never ran
(an image it could not pull), `TerminationNotice` when its agent stopped it because the
container instance is going away (reported with ECS's reason for that, `Host EC2 (instance
ID) terminated.`), `EssentialContainerExited` otherwise.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from cargohold.domain.ecs import (
    DEPROVISIONING,
    ESSENTIAL_CONTAINER_EXITED,
    PROVISIONING,
    RUNNING,
    STOPPED,
    TASK_FAILED_TO_START,
    TASK_STATUSES,
    TERMINATION_NOTICE,
    USER_INITIATED,
    InvalidParameter,
    cluster_arn,
    container_arn,
    container_instance_arn,
    host_terminated,
    task_arn,
)
from cargohold.domain.principal import Principal
from cargohold.ports import Metadata, TaskFilter, Transaction
from cargohold.service.authz import RequestRecord
from cargohold.service.ecs import ACTIVE, merge_tags, require_cluster
from cargohold.service.ecs_definitions import TaskDefinitionService
from cargohold.service.ecs_roles import TaskRoles
from cargohold.service.sts import AssumedRole

_MAX_COUNT = 10


def _order(status: str) -> int:
    return TASK_STATUSES.index(status) if status in TASK_STATUSES else 0


def _container_overrides(definition: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    names = {c["name"] for c in definition["containerDefinitions"]}
    for override in overrides.get("containerOverrides") or []:
        if override.get("name") not in names:
            raise InvalidParameter(
                f"Override for container named {override.get('name')} is not a container in "
                "the TaskDefinition."
            )


def _network(definition: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    if definition.get("networkMode") != "awsvpc":
        return
    if not params.get("networkConfiguration"):
        raise InvalidParameter(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified."
        )
    raise InvalidParameter("The awsvpc network mode is not supported by this cluster.")


class TaskService:
    def __init__(
        self,
        store: Metadata,
        clock: Callable[[], float],
        *,
        region: str,
        definitions: TaskDefinitionService,
        roles: TaskRoles,
    ) -> None:
        self._store = store
        self._clock = clock
        self._region = region
        self._definitions = definitions
        self._roles = roles

    async def run_task(
        self,
        principal: Principal,
        cluster: str,
        params: Mapping[str, Any],
        record: RequestRecord | None,
    ) -> list[dict[str, Any]]:
        account = principal.account_id
        count = int(params.get("count") or 1)
        if not 1 <= count <= _MAX_COUNT:
            raise InvalidParameter("Count must be between 1 and 10.")
        definition = await self._definitions.for_task(account, str(params["taskDefinition"]))
        overrides = dict(params.get("overrides") or {})
        _container_overrides(definition, overrides)
        _network(definition, params)
        roles = [
            str(overrides.get(k) or definition.get(k))
            for k in ("executionRoleArn", "taskRoleArn")
            if overrides.get(k) or definition.get(k)
        ]
        source = cluster_arn(self._region, account, cluster)
        await self._roles.check(principal, roles, record, source_arn=source)
        tags = merge_tags([], list(params.get("tags") or []))
        tasks = []
        async with self._store.write() as tx:
            await require_cluster(tx, account, cluster)
            for _ in range(count):
                instance = await self._place(tx, account, cluster)
                task = self._new_task(account, cluster, instance, definition, params, overrides)
                await tx.ecs.insert_task(
                    task["taskArn"].rpartition("/")[2],
                    account,
                    task,
                    tags,
                    container_instance=instance,
                    family=definition["family"],
                    started_by=params.get("startedBy"),
                )
                tasks.append({**task, "tags": tags})
        return tasks

    async def _place(self, tx: Transaction, account: str, cluster: str) -> str:
        instances = await tx.ecs.list_instances(account, cluster, ACTIVE)
        if not instances:
            raise InvalidParameter("No Container Instances were found in your cluster.")
        load = await tx.ecs.count_tasks(account, cluster, active=True)
        ids = [str(i.document["containerInstanceArn"]).rpartition("/")[2] for i in instances]
        return min(ids, key=lambda i: (load.get(i, 0), i))

    def _new_task(
        self,
        account: str,
        cluster: str,
        instance: str,
        definition: Mapping[str, Any],
        params: Mapping[str, Any],
        overrides: dict[str, Any],
    ) -> dict[str, Any]:
        task_id = secrets.token_hex(16)
        arn = task_arn(self._region, account, cluster, task_id)
        containers = [
            {
                "containerArn": container_arn(
                    self._region, account, cluster, task_id, secrets.token_hex(16)
                ),
                "taskArn": arn,
                "name": c["name"],
                "image": c["image"],
                "lastStatus": "PENDING",
                "networkBindings": [],
                "networkInterfaces": [],
                "healthStatus": "UNKNOWN",
                "cpu": str(c.get("cpu", 0)),
            }
            for c in definition["containerDefinitions"]
        ]
        overrides.setdefault("containerOverrides", [])
        overrides.setdefault("inferenceAcceleratorOverrides", [])
        task: dict[str, Any] = {
            "taskArn": arn,
            "clusterArn": cluster_arn(self._region, account, cluster),
            "taskDefinitionArn": definition["taskDefinitionArn"],
            "containerInstanceArn": container_instance_arn(
                self._region, account, cluster, instance
            ),
            "overrides": overrides,
            "lastStatus": PROVISIONING,
            "desiredStatus": RUNNING,
            "containers": containers,
            "createdAt": self._clock(),
            "version": 1,
            "group": params.get("group") or f"family:{definition['family']}",
            "launchType": "EC2",
            "attachments": [],
            "enableExecuteCommand": False,
            "healthStatus": "UNKNOWN",
        }
        for member in ("cpu", "memory"):
            if member in definition:
                task[member] = definition[member]
        if params.get("startedBy"):
            task["startedBy"] = params["startedBy"]
        return task

    async def describe_tasks(
        self, account: str, cluster: str, ids: list[str], with_tags: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        tasks, failures = [], []
        async with self._store.read() as tx:
            await require_cluster(tx, account, cluster)
            for task_id in ids:
                found = await tx.ecs.get_task(account, task_id)
                arn = task_arn(self._region, account, cluster, task_id)
                if found is None or found.document["taskArn"] != arn:
                    failures.append({"arn": arn, "reason": "MISSING"})
                    continue
                tasks.append({**found.document, **({"tags": found.tags} if with_tags else {})})
        return tasks, failures

    async def list_tasks(self, account: str, where: TaskFilter) -> list[str]:
        async with self._store.read() as tx:
            await require_cluster(tx, account, where.cluster)
            found = await tx.ecs.list_tasks(account, where)
        return [t.document["taskArn"] for t in found]

    async def stop_task(
        self, account: str, cluster: str, task_id: str, reason: str | None
    ) -> dict[str, Any]:
        async with self._store.write() as tx:
            await require_cluster(tx, account, cluster)
            found = await tx.ecs.get_task(account, task_id)
            if found is None or found.document["taskArn"] != task_arn(
                self._region, account, cluster, task_id
            ):
                raise InvalidParameter("The referenced task was not found.")
            task = dict(found.document)
            if task["desiredStatus"] != STOPPED:
                now = self._clock()
                task.update(desiredStatus=STOPPED, stoppingAt=now, stopCode=USER_INITIATED)
                task["stoppedReason"] = reason or "Task stopped by user"
                if task["lastStatus"] == PROVISIONING:
                    # No agent has taken it up: nothing runs that must stop first.
                    task.update(lastStatus=STOPPED, stoppedAt=now, executionStoppedAt=now)
                task["version"] += 1
                await tx.ecs.update_task(task_id, task)
        return {**task, "tags": found.tags}

    async def state_change(
        self, account: str, cluster: str, task_id: str, change: Mapping[str, Any]
    ) -> None:
        """SubmitTaskStateChange: an agent's report of a task and its containers."""
        async with self._store.write() as tx:
            await require_cluster(tx, account, cluster)
            found = await tx.ecs.get_task(account, task_id)
            # The call is authorized on the cluster it names: a task of another is not found.
            if found is None or found.document["taskArn"] != task_arn(
                self._region, account, cluster, task_id
            ):
                raise InvalidParameter("The referenced task was not found.")
            task = dict(found.document)
            if task["lastStatus"] == STOPPED:
                return
            instance_id = str(task["containerInstanceArn"]).rpartition("/")[2]
            instance = await tx.ecs.get_instance(account, instance_id)
            host = instance.document.get("ec2InstanceId") if instance is not None else None
            self._apply(task, change, host)
            await tx.ecs.update_task(task_id, task)

    def _apply(self, task: dict[str, Any], change: Mapping[str, Any], host: str | None) -> None:
        now = self._clock()
        for member in ("pullStartedAt", "pullStoppedAt", "executionStoppedAt"):
            if change.get(member) is not None:
                task[member] = _epoch(change[member])
        by_name = {c["name"]: c for c in task["containers"]}
        for report in change.get("containers") or []:
            container = by_name.get(report.get("containerName"))
            if container is None:
                continue
            for member in ("runtimeId", "exitCode", "reason", "imageDigest"):
                if report.get(member) is not None:
                    container[member] = report[member]
            if report.get("status"):
                container["lastStatus"] = report["status"]
        status = change.get("status")
        if status in TASK_STATUSES and _order(status) > _order(task["lastStatus"]):
            task["lastStatus"] = status
            task["version"] += 1
            if status == RUNNING:
                task.update(startedAt=now, connectivity="CONNECTED", connectivityAt=now)
            elif status == DEPROVISIONING:
                task.setdefault("stoppingAt", now)
            elif status == STOPPED:
                self._stopped(task, change, now, host)

    @staticmethod
    def _stopped(
        task: dict[str, Any], change: Mapping[str, Any], now: float, host: str | None
    ) -> None:
        task.update(desiredStatus=STOPPED, stoppedAt=now)
        task.setdefault("stoppingAt", now)
        task.setdefault("executionStoppedAt", now)
        if task.get("stopCode") == USER_INITIATED:
            return
        reason = str(change.get("reason") or "")
        if host is not None and reason == host_terminated(host):
            # The agent stopped it because its container instance is going away.
            task["stopCode"] = TERMINATION_NOTICE
            task["stoppedReason"] = reason
        elif "startedAt" not in task:
            task["stopCode"] = TASK_FAILED_TO_START
            task["stoppedReason"] = reason or "Task failed to start"
        else:
            task["stopCode"] = ESSENTIAL_CONTAINER_EXITED
            task["stoppedReason"] = reason or "Essential container in task exited"


def _epoch(value: Any) -> float:
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


class TaskCredentials:
    """What ECS hands the agent a task is placed on: sessions of the task's execution role and
    task role, assumed as `ecs-tasks.amazonaws.com` with the task's id as session name."""

    def __init__(self, store: Metadata, roles: TaskRoles, *, region: str) -> None:
        self._store = store
        self._roles = roles
        self._region = region

    async def assume(
        self, account: str, cluster: str, instance_id: str, task_id: str, which: str
    ) -> tuple[str, AssumedRole]:
        """(role ARN, session) of the task's `execution` or `task` role. InvalidParameter
        unless the task is placed on the instance and not yet stopped, or has no such role."""
        async with self._store.read() as tx:
            found = await tx.ecs.get_task(account, task_id)
            task = found.document if found is not None else None
            if task is None or task["containerInstanceArn"] != container_instance_arn(
                self._region, account, cluster, instance_id
            ):
                raise InvalidParameter("The referenced task was not found.")
            if task["lastStatus"] == STOPPED:
                raise InvalidParameter("The referenced task is stopped.")
            family, _, revision = task["taskDefinitionArn"].rpartition("/")[2].rpartition(":")
            definition = await tx.ecs.get_task_definition(account, family, int(revision))
        member = "executionRoleArn" if which == "execution" else "taskRoleArn"
        role_arn = task["overrides"].get(member) or (definition.document if definition else {}).get(
            member
        )
        if not role_arn:
            raise InvalidParameter(f"The task has no {member}.")
        session = await self._roles.assume(
            account, str(role_arn), task_id, source_arn=str(task["taskArn"])
        )
        return str(role_arn), session
