"""ECS clusters, container instances and resource tags.

A cluster is ACTIVE from CreateCluster (which answers the existing cluster when called again)
until DeleteCluster, which refuses while container instances are registered or tasks are not
yet STOPPED. A container instance is one agent (`cargohold ecs agent`) registered in a cluster;
DeregisterContainerInstance refuses while tasks run on it, unless forced, which stops them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cargohold.domain.ecs import (
    STOPPED,
    ClientError,
    ClusterContainsContainerInstances,
    ClusterContainsTasks,
    ClusterNotFound,
    InvalidParameter,
    check_cluster_name,
    cluster_arn,
    container_instance_arn,
    parse_arn,
    task_definition_reference,
)
from cargohold.ports import Metadata, TaskFilter, Transaction
from cargohold.ports.ecs import EcsRecord, TaggedKind

ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"
#: What an agent registers with when it says nothing of its resources.
_DEFAULT_RESOURCES = (
    {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
    {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096},
)
_MAX_TAGS = 50


def merge_tags(
    current: list[dict[str, str]], added: list[dict[str, str]], removed: Sequence[str] = ()
) -> list[dict[str, str]]:
    tags = {t["key"]: t.get("value", "") for t in current}
    for tag in added:
        tags[tag["key"]] = tag.get("value", "")
    for key in removed:
        tags.pop(key, None)
    if len(tags) > _MAX_TAGS:
        raise InvalidParameter("The following supplied instance tags are invalid: too many tags")
    return [{"key": k, "value": v} for k, v in tags.items()]


async def require_cluster(tx: Transaction, account: str, name: str) -> dict[str, Any]:
    found = await tx.ecs.get_cluster(account, name)
    if found is None:
        raise ClusterNotFound()
    return found.document


class EcsService:
    """Clusters, container instances and tags."""

    def __init__(self, store: Metadata, clock: Callable[[], float], *, region: str) -> None:
        self._store = store
        self._clock = clock
        self._region = region

    # -- clusters ---------------------------------------------------------------------------

    async def create_cluster(
        self, account: str, name: str, tags: list[dict[str, str]], settings: list[Any]
    ) -> dict[str, Any]:
        check_cluster_name(name)
        document = {
            "clusterArn": cluster_arn(self._region, account, name),
            "clusterName": name,
            "status": ACTIVE,
            "settings": settings or [{"name": "containerInsights", "value": "disabled"}],
            "capacityProviders": [],
            "defaultCapacityProviderStrategy": [],
        }
        async with self._store.write() as tx:
            tags = merge_tags([], tags)
            if not await tx.ecs.insert_cluster(account, name, document, tags, self._clock()):
                found = await tx.ecs.get_cluster(account, name)
                assert found is not None
                document, tags = found.document, found.tags
        return await self._counted(account, document, tags)

    async def _counted(
        self, account: str, document: dict[str, Any], tags: list[dict[str, str]] | None
    ) -> dict[str, Any]:
        name = document["clusterName"]
        async with self._store.read() as tx:
            instances = await tx.ecs.list_instances(account, name, ACTIVE)
            tasks = await tx.ecs.list_tasks(account, TaskFilter(name))
        live = [t.document for t in tasks if t.document["lastStatus"] != STOPPED]
        out = {
            **document,
            "registeredContainerInstancesCount": len(instances),
            "runningTasksCount": sum(t["lastStatus"] == "RUNNING" for t in live),
            "pendingTasksCount": sum(t["lastStatus"] != "RUNNING" for t in live),
            "activeServicesCount": 0,
            "statistics": [],
        }
        if tags is not None:
            out["tags"] = tags
        return out

    async def describe_clusters(
        self, account: str, names: list[str], with_tags: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        clusters, failures = [], []
        for name in names:
            async with self._store.read() as tx:
                found = await tx.ecs.get_cluster(account, name)
            if found is None:
                arn = cluster_arn(self._region, account, name)
                failures.append({"arn": arn, "reason": "MISSING"})
                continue
            tags = found.tags if with_tags else None
            clusters.append(await self._counted(account, found.document, tags))
        return clusters, failures

    async def list_clusters(self, account: str) -> list[str]:
        async with self._store.read() as tx:
            names = await tx.ecs.list_clusters(account)
        return [cluster_arn(self._region, account, n) for n in names]

    async def delete_cluster(self, account: str, name: str) -> dict[str, Any]:
        async with self._store.write() as tx:
            document = await require_cluster(tx, account, name)
            if await tx.ecs.list_instances(account, name, ACTIVE):
                raise ClusterContainsContainerInstances(
                    "The Cluster cannot be deleted while Container Instances are active or "
                    "draining."
                )
            if await tx.ecs.count_tasks(account, name, active=True):
                raise ClusterContainsTasks("The Cluster cannot be deleted while Tasks are active.")
            await tx.ecs.delete_cluster(account, name)
        return {**document, "status": INACTIVE}

    # -- container instances ----------------------------------------------------------------

    async def register_instance(
        self, account: str, cluster: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        instance_id = secrets.token_hex(16)
        resources = list(params.get("totalResources") or _DEFAULT_RESOURCES)
        identity = str(params.get("instanceIdentityDocument") or "")
        document = {
            "containerInstanceArn": container_instance_arn(
                self._region, account, cluster, instance_id
            ),
            "ec2InstanceId": _instance_name(identity) or f"i-{instance_id[:17]}",
            "version": 1,
            "versionInfo": params.get("versionInfo") or {},
            "remainingResources": resources,
            "registeredResources": resources,
            "status": ACTIVE,
            "agentConnected": True,
            "attributes": list(params.get("attributes") or []),
            "registeredAt": self._clock(),
        }
        tags = merge_tags([], list(params.get("tags") or []))
        async with self._store.write() as tx:
            await require_cluster(tx, account, cluster)
            await tx.ecs.insert_instance(instance_id, account, cluster, document, tags)
        return {**document, "runningTasksCount": 0, "pendingTasksCount": 0, "tags": tags}

    async def deregister_instance(
        self, account: str, cluster: str, instance_id: str, force: bool
    ) -> dict[str, Any]:
        async with self._store.write() as tx:
            await require_cluster(tx, account, cluster)
            found = await tx.ecs.get_instance(account, instance_id)
            if found is None or found.document["status"] != ACTIVE:
                raise InvalidParameter("Container instance not found.")
            live = await tx.ecs.list_tasks(
                account, TaskFilter(cluster, container_instance=instance_id)
            )
            live = [t for t in live if t.document["lastStatus"] != STOPPED]
            if live and not force:
                raise InvalidParameter("Found running tasks on the instance.")
            now = self._clock()
            for task in live:
                stopped = {**task.document, "desiredStatus": STOPPED, "lastStatus": STOPPED}
                stopped.update(
                    stoppedAt=now,
                    stoppingAt=now,
                    stopCode="UserInitiated",
                    stoppedReason="Container instance deregistered",
                )
                await tx.ecs.update_task(task.document["taskArn"].rpartition("/")[2], stopped)
            document = {**found.document, "status": INACTIVE, "agentConnected": False}
            await tx.ecs.update_instance(instance_id, document)
        return document

    async def list_instances(
        self, account: str, cluster: str, status: str | None, query: str | None = None
    ) -> list[str]:
        if query:
            raise InvalidParameter("The cluster query language is not supported by this cluster.")
        async with self._store.read() as tx:
            await require_cluster(tx, account, cluster)
            found = await tx.ecs.list_instances(account, cluster, status or ACTIVE)
        return [i.document["containerInstanceArn"] for i in found]

    async def describe_instances(
        self, account: str, cluster: str, ids: list[str], with_tags: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        found_docs, failures = [], []
        async with self._store.read() as tx:
            await require_cluster(tx, account, cluster)
            counts = await tx.ecs.count_tasks(account, cluster, active=True)
            for instance_id in ids:
                found = await tx.ecs.get_instance(account, instance_id)
                arn = container_instance_arn(self._region, account, cluster, instance_id)
                if found is None or found.document["containerInstanceArn"] != arn:
                    failures.append({"arn": arn, "reason": "MISSING"})
                    continue
                document = {
                    **found.document,
                    "runningTasksCount": counts.get(instance_id, 0),
                    "pendingTasksCount": 0,
                }
                if with_tags:
                    document["tags"] = found.tags
                found_docs.append(document)
        return found_docs, failures

    # -- tags -------------------------------------------------------------------------------

    async def tags(self, account: str, resource_arn: str) -> list[dict[str, str]]:
        kind, key = self._tagged(account, resource_arn)
        async with self._store.read() as tx:
            found: EcsRecord = await self._tagged_record(tx, kind, account, key)
        return found.tags

    async def change_tags(
        self, account: str, resource_arn: str, added: list[dict[str, str]], removed: list[str]
    ) -> None:
        kind, key = self._tagged(account, resource_arn)
        async with self._store.write() as tx:
            current = (await self._tagged_record(tx, kind, account, key)).tags
            await tx.ecs.set_tags(kind, account, key, merge_tags(current, added, removed))

    def _tagged(self, account: str, resource_arn: str) -> tuple[TaggedKind, tuple[str, ...]]:
        arn = parse_arn(resource_arn)
        if arn is None or arn.account != account or arn.region != self._region:
            raise InvalidParameter("The ARN provided is invalid.")
        if arn.kind == "cluster":
            return "cluster", (arn.path,)
        if arn.kind == "task-definition":
            family, revision = task_definition_reference(arn.path)
            if revision is None:
                raise InvalidParameter("The ARN provided is invalid.")
            return "task-definition", (family, str(revision))
        if arn.kind in ("task", "container-instance"):
            return arn.kind, (arn.path.rpartition("/")[2],)  # type: ignore[return-value]
        raise InvalidParameter("The ARN provided is invalid.")

    @staticmethod
    async def _tagged_record(
        tx: Transaction, kind: TaggedKind, account: str, key: tuple[str, ...]
    ) -> EcsRecord:
        found: EcsRecord | None
        if kind == "cluster":
            found = await tx.ecs.get_cluster(account, key[0])
            if found is None:
                raise ClusterNotFound(
                    "The specified cluster is inactive. Specify an active cluster and try again."
                )
            return found
        if kind == "task-definition":
            found = await tx.ecs.get_task_definition(account, key[0], int(key[1]))
        elif kind == "task":
            found = await tx.ecs.get_task(account, key[0])
        else:
            found = await tx.ecs.get_instance(account, key[0])
        if found is None:
            raise ClientError("The specified resource could not be found.")
        return found


def _instance_name(identity: str) -> str | None:
    try:
        value = json.loads(identity) if identity else None
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("instanceId"), str):
        return str(value["instanceId"])[:64]
    return None
