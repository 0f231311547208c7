"""The ECS role store: clusters, task definitions, container instances and tasks.

Resources are kept as the ECS API shapes them (`document`), with their resource tags beside
them (`[{"key": …, "value": …}]`); the store indexes what calls select and filter on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

#: The kinds of ECS resource that carry tags.
TaggedKind = Literal["cluster", "task-definition", "container-instance", "task"]


@dataclass(frozen=True, slots=True)
class EcsRecord:
    document: dict[str, Any]
    tags: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class TaskFilter:
    cluster: str
    container_instance: str | None = None
    family: str | None = None
    desired_status: str | None = None
    started_by: str | None = None


class EcsStore(Protocol):
    # -- clusters ---------------------------------------------------------------------------
    async def insert_cluster(
        self,
        account: str,
        name: str,
        document: dict[str, Any],
        tags: list[dict[str, str]],
        now: float,
    ) -> bool:
        """Insert unless the cluster exists; whether it was inserted."""
        ...

    async def get_cluster(self, account: str, name: str) -> EcsRecord | None: ...

    async def update_cluster(self, account: str, name: str, document: dict[str, Any]) -> None: ...

    async def delete_cluster(self, account: str, name: str) -> bool: ...

    async def list_clusters(self, account: str) -> list[str]:
        """Cluster names, in creation order."""
        ...

    # -- task definitions -------------------------------------------------------------------
    async def latest_revision(self, account: str, family: str) -> int:
        """The highest revision the family ever had (0: none)."""
        ...

    async def insert_task_definition(
        self,
        account: str,
        family: str,
        revision: int,
        document: dict[str, Any],
        tags: list[dict[str, str]],
    ) -> bool:
        """Insert unless the revision exists; whether it was inserted."""
        ...

    async def get_task_definition(
        self, account: str, family: str, revision: int | None
    ) -> EcsRecord | None:
        """One revision; None: the latest ACTIVE one."""
        ...

    async def update_task_definition(
        self, account: str, family: str, revision: int, document: dict[str, Any]
    ) -> None:
        """Store the document (its `status` too)."""
        ...

    async def list_task_definitions(
        self, account: str, *, family: str | None, status: str | None
    ) -> list[tuple[str, int]]:
        """(family, revision) pairs by family, then revision."""
        ...

    # -- container instances ----------------------------------------------------------------
    async def insert_instance(
        self,
        instance_id: str,
        account: str,
        cluster: str,
        document: dict[str, Any],
        tags: list[dict[str, str]],
    ) -> None: ...

    async def get_instance(self, account: str, instance_id: str) -> EcsRecord | None: ...

    async def update_instance(self, instance_id: str, document: dict[str, Any]) -> None: ...

    async def list_instances(
        self, account: str, cluster: str, status: str | None = None
    ) -> list[EcsRecord]: ...

    # -- tasks ------------------------------------------------------------------------------
    async def insert_task(
        self,
        task_id: str,
        account: str,
        document: dict[str, Any],
        tags: list[dict[str, str]],
        *,
        container_instance: str | None,
        family: str,
        started_by: str | None,
    ) -> None: ...

    async def get_task(self, account: str, task_id: str) -> EcsRecord | None: ...

    async def update_task(self, task_id: str, document: dict[str, Any]) -> None:
        """Store the document; its `desiredStatus` and `lastStatus` are indexed."""
        ...

    async def list_tasks(self, account: str, where: TaskFilter) -> list[EcsRecord]:
        """Tasks of a cluster, oldest first."""
        ...

    async def count_tasks(self, account: str, cluster: str, *, active: bool) -> dict[str, int]:
        """Tasks by container instance id (`""` for none); `active`: not yet STOPPED."""
        ...

    # -- tags -------------------------------------------------------------------------------
    async def set_tags(
        self, kind: TaggedKind, account: str, key: Sequence[str], tags: list[dict[str, str]]
    ) -> bool:
        """Replace a resource's tags; `key`: (name) of a cluster, (family, revision) of a task
        definition, (id) of a task or instance. Whether it exists."""
        ...
