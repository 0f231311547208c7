"""ECS task definitions: families of numbered revisions.

RegisterTaskDefinition makes the family's next revision (revisions are never reused, even once
deleted); DeregisterTaskDefinition makes one INACTIVE (tasks may still describe it, no new task
may use it); DeleteTaskDefinitions deletes INACTIVE ones. A container definition is kept as
given, with ECS's defaults filled in (`essential` true, empty lists), so DescribeTaskDefinition
answers what ECS answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cargohold.domain.ecs import (
    ClientError,
    InvalidParameter,
    check_container_name,
    check_family,
    task_definition_arn,
    task_definition_family_arn,
    task_definition_reference,
)
from cargohold.domain.principal import Principal
from cargohold.ports import Metadata
from cargohold.service.authz import RequestRecord
from cargohold.service.ecs_roles import TaskRoles

ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"
DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"
_NETWORK_MODES = frozenset({"bridge", "host", "awsvpc", "none"})
_LIST_DEFAULTS = ("portMappings", "environment", "mountPoints", "volumesFrom")
_MISSING = (
    "The specified task definition does not exist. Specify a valid account, family, and "
    "revision and try again."
)
_STILL_ACTIVE = (
    "The specified task definition is still in ACTIVE status. Deregister the target task "
    "definition revision before attempting to delete."
)
#: What a RegisterTaskDefinition call keeps at the task definition's top level.
_KEPT = (
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "runtimePlatform",
)


def _container(definition: Mapping[str, Any]) -> dict[str, Any]:
    container = {"cpu": 0, **definition}
    check_container_name(str(container.get("name", "")))
    if not container.get("image"):
        raise ClientError("Container.image should not be null or empty.")
    container.setdefault("essential", True)
    for member in _LIST_DEFAULTS:
        container.setdefault(member, [])
    return container


class TaskDefinitionService:
    def __init__(
        self, store: Metadata, clock: Callable[[], float], *, region: str, roles: TaskRoles
    ) -> None:
        self._store = store
        self._clock = clock
        self._region = region
        self._roles = roles

    async def register(
        self, principal: Principal, params: Mapping[str, Any], record: RequestRecord | None
    ) -> tuple[dict[str, Any], list[dict[str, str]]]:
        family = str(params["family"])
        check_family(family)
        containers = [_container(c) for c in params.get("containerDefinitions") or []]
        if not containers:
            raise ClientError("Container list cannot be empty.")
        names = [c["name"] for c in containers]
        if len(set(names)) != len(names):
            raise ClientError("Container names must be unique.")
        if not any(c["essential"] for c in containers):
            raise ClientError("A task definition must have at least one essential container.")
        mode = params.get("networkMode", "bridge")
        if mode not in _NETWORK_MODES:
            raise ClientError(f"Invalid networkMode: {mode}")
        roles = [params[k] for k in ("executionRoleArn", "taskRoleArn") if params.get(k)]
        account = principal.account_id
        source = task_definition_family_arn(self._region, account, family)
        await self._roles.check(principal, roles, record, source_arn=source)
        tags = list(params.get("tags") or [])
        document: dict[str, Any] = {
            "family": family,
            "containerDefinitions": containers,
            "status": ACTIVE,
            "compatibilities": ["EC2"],
            "registeredAt": self._clock(),
            "registeredBy": principal.arn,
            "volumes": [],
            "placementConstraints": [],
            "requiresAttributes": [],
            **{k: params[k] for k in _KEPT if k in params},
        }
        document.setdefault("networkMode", "bridge")
        async with self._store.write() as tx:
            revision = await tx.ecs.latest_revision(account, family) + 1
            document["revision"] = revision
            document["taskDefinitionArn"] = task_definition_arn(
                self._region, account, family, revision
            )
            if not await tx.ecs.insert_task_definition(account, family, revision, document, tags):
                raise ClientError("Too many concurrent attempts to create a new revision.")
        return document, tags

    async def describe(self, account: str, reference: str) -> tuple[dict[str, Any], list[Any]]:
        family, revision = task_definition_reference(reference)
        async with self._store.read() as tx:
            found = await tx.ecs.get_task_definition(account, family, revision)
        if found is None or found.document["status"] == DELETE_IN_PROGRESS:
            raise ClientError("Unable to describe task definition.")
        return found.document, found.tags

    async def for_task(self, account: str, reference: str) -> dict[str, Any]:
        """The ACTIVE revision a RunTask names."""
        family, revision = task_definition_reference(reference)
        async with self._store.read() as tx:
            found = await tx.ecs.get_task_definition(account, family, revision)
        if found is None or found.document["status"] != ACTIVE:
            raise ClientError("TaskDefinition not found.")
        return found.document

    async def list_arns(
        self, account: str, *, family: str | None, status: str, descending: bool
    ) -> list[str]:
        async with self._store.read() as tx:
            found = await tx.ecs.list_task_definitions(
                account, family=family, status=None if status == "ALL" else status
            )
        arns = [task_definition_arn(self._region, account, f, r) for f, r in found]
        return arns[::-1] if descending else arns

    async def families(self, account: str, *, prefix: str | None, status: str) -> list[str]:
        """Families by name: ACTIVE ones have an ACTIVE revision, INACTIVE ones none."""
        async with self._store.read() as tx:
            everything = await tx.ecs.list_task_definitions(account, family=None, status=None)
            active = await tx.ecs.list_task_definitions(account, family=None, status=ACTIVE)
        live = {f for f, _ in active}
        names = dict.fromkeys(f for f, _ in everything if f.startswith(prefix or ""))
        if status == ACTIVE:
            return [f for f in names if f in live]
        if status == INACTIVE:
            return [f for f in names if f not in live]
        return list(names)

    async def deregister(self, account: str, reference: str) -> dict[str, Any]:
        family, revision = task_definition_reference(reference)
        if revision is None:
            raise ClientError("Invalid revision number. Number: " + reference)
        async with self._store.write() as tx:
            found = await tx.ecs.get_task_definition(account, family, revision)
            if found is None or found.document["status"] == DELETE_IN_PROGRESS:
                raise ClientError("The specified task definition does not exist.")
            document = {**found.document, "status": INACTIVE}
            document.setdefault("deregisteredAt", self._clock())
            await tx.ecs.update_task_definition(account, family, revision, document)
        return document

    async def delete(
        self, account: str, references: list[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """DeleteTaskDefinitions: only INACTIVE revisions; the others come back as failures."""
        deleted: list[dict[str, Any]] = []
        failures: list[dict[str, str]] = []
        async with self._store.write() as tx:
            for reference in references:
                family, revision = task_definition_reference(reference)
                if revision is None:
                    raise InvalidParameter(
                        "The specified task definition identifier is invalid. Specify a valid "
                        "name or ARN and try again."
                    )
                found = await tx.ecs.get_task_definition(account, family, revision)
                arn = task_definition_arn(self._region, account, family, revision)
                if found is None:
                    failures.append({"arn": arn, "reason": _MISSING})
                elif found.document["status"] == ACTIVE:
                    failures.append({"arn": arn, "reason": _STILL_ACTIVE})
                else:
                    document = {**found.document, "status": DELETE_IN_PROGRESS}
                    document["deleteRequestedAt"] = self._clock()
                    # The row stays, so the family's revision numbers are never reused.
                    await tx.ecs.update_task_definition(account, family, revision, document)
                    deleted.append(document)
        return deleted, failures
