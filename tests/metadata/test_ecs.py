"""The ECS and CloudWatch Logs stores on SQLite and PostgreSQL: inserts that conflict, revision
numbers, task filters and counts, tags, and the events of log streams in order."""

from __future__ import annotations

import pytest

from cargohold.metadata.store import MetadataStore
from cargohold.ports import EventQuery, TaskFilter

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
ARN = "arn:aws:ecs:us-east-1:123456789012"


def task(task_id: str, *, status: str = "PROVISIONING", instance: str = "i1") -> dict[str, object]:
    return {
        "taskArn": f"{ARN}:task/c/{task_id}",
        "clusterArn": f"{ARN}:cluster/c",
        "containerInstanceArn": f"{ARN}:container-instance/c/{instance}",
        "desiredStatus": "RUNNING",
        "lastStatus": status,
        "createdAt": float(len(task_id)),
    }


async def test_clusters_and_definitions(store: MetadataStore) -> None:
    async with store.write() as tx:
        assert await tx.ecs.insert_cluster(ACCOUNT, "c", {"clusterName": "c"}, [], 1.0)
        assert not await tx.ecs.insert_cluster(ACCOUNT, "c", {"clusterName": "c"}, [], 2.0)
        assert await tx.ecs.insert_cluster(ACCOUNT, "b", {"clusterName": "b"}, [], 3.0)
        for revision, status in ((1, "ACTIVE"), (2, "INACTIVE"), (3, "ACTIVE")):
            document = {"revision": revision, "status": status}
            assert await tx.ecs.insert_task_definition(ACCOUNT, "web", revision, document, [])
        assert not await tx.ecs.insert_task_definition(ACCOUNT, "web", 3, {"status": "X"}, [])
    async with store.read() as tx:
        assert await tx.ecs.list_clusters(ACCOUNT) == ["c", "b"]
        assert await tx.ecs.latest_revision(ACCOUNT, "web") == 3
        assert await tx.ecs.latest_revision(ACCOUNT, "none") == 0
        latest = await tx.ecs.get_task_definition(ACCOUNT, "web", None)
        assert latest is not None and latest.document["revision"] == 3
        listed = await tx.ecs.list_task_definitions(ACCOUNT, family="web", status="ACTIVE")
        assert listed == [("web", 1), ("web", 3)]
    async with store.write() as tx:
        await tx.ecs.update_task_definition(
            ACCOUNT, "web", 3, {"revision": 3, "status": "INACTIVE"}
        )
        assert await tx.ecs.set_tags("task-definition", ACCOUNT, ("web", "1"), [{"key": "k"}])
        assert not await tx.ecs.set_tags("cluster", ACCOUNT, ("nope",), [])
        assert await tx.ecs.delete_cluster(ACCOUNT, "b")
    async with store.read() as tx:
        latest = await tx.ecs.get_task_definition(ACCOUNT, "web", None)
        assert latest is not None and latest.document["revision"] == 1
        assert latest.tags == [{"key": "k"}]
        assert await tx.ecs.list_clusters(ACCOUNT) == ["c"]


async def test_tasks_and_instances(store: MetadataStore) -> None:
    async with store.write() as tx:
        for instance in ("i1", "i2"):
            document = {"status": "ACTIVE", "containerInstanceArn": instance}
            await tx.ecs.insert_instance(instance, ACCOUNT, "c", document, [])
        await tx.ecs.insert_task(
            "t1", ACCOUNT, task("t1"), [], container_instance="i1", family="web", started_by="me"
        )
        await tx.ecs.insert_task(
            "t22",
            ACCOUNT,
            task("t22", instance="i2"),
            [],
            container_instance="i2",
            family="db",
            started_by=None,
        )
        await tx.ecs.insert_task(
            "t333",
            ACCOUNT,
            task("t333"),
            [],
            container_instance="i1",
            family="web",
            started_by=None,
        )
        await tx.ecs.update_task(
            "t333", {**task("t333"), "lastStatus": "STOPPED", "desiredStatus": "STOPPED"}
        )
        await tx.ecs.update_instance("i2", {"status": "INACTIVE", "containerInstanceArn": "i2"})
    async with store.read() as tx:
        assert await tx.ecs.count_tasks(ACCOUNT, "c", active=True) == {"i1": 1, "i2": 1}
        assert await tx.ecs.count_tasks(ACCOUNT, "c", active=False) == {"i1": 2, "i2": 1}
        running = await tx.ecs.list_tasks(ACCOUNT, TaskFilter("c", desired_status="RUNNING"))
        assert [t.document["taskArn"][-3:] for t in running] == ["/t1", "t22"]
        mine = await tx.ecs.list_tasks(ACCOUNT, TaskFilter("c", started_by="me", family="web"))
        assert len(mine) == 1
        on_i1 = await tx.ecs.list_tasks(ACCOUNT, TaskFilter("c", container_instance="i1"))
        assert len(on_i1) == 2
        active = await tx.ecs.list_instances(ACCOUNT, "c", "ACTIVE")
        assert [i.document["containerInstanceArn"] for i in active] == ["i1"]
        assert await tx.ecs.get_task("000000000000", "t1") is None


async def test_log_events_in_order(store: MetadataStore) -> None:
    async with store.write() as tx:
        assert await tx.logs.insert_group(ACCOUNT, "/ecs/app", 5, {})
        assert not await tx.logs.insert_group(ACCOUNT, "/ecs/app", 6, {})
        group = await tx.logs.group(ACCOUNT, "/ecs/app")
        assert group is not None
        assert await tx.logs.insert_stream(group.id, "s", 7)
        assert not await tx.logs.insert_stream(group.id, "s", 8)
        [stream] = await tx.logs.streams(group.id)
        await tx.logs.append(stream, [(10, "a"), (30, "bb")], 100)
        await tx.logs.append(stream, [(20, "ccc")], 200)
    async with store.read() as tx:
        [stream] = await tx.logs.streams(group.id, "s")
        assert (stream.first_event, stream.last_event, stream.last_ingestion) == (10, 30, 200)
        assert stream.stored_bytes == 6
        found = await tx.logs.group(ACCOUNT, "/ecs/app")
        assert found is not None and found.stored_bytes == 6
        events = await tx.logs.events(EventQuery((stream.id,), limit=2))
        assert [e.message for e in events] == ["a", "bb"]
        tail = await tx.logs.events(EventQuery((stream.id,), limit=2, newest_first=True))
        assert [e.message for e in tail] == ["ccc", "bb"]
        ranged = await tx.logs.events(EventQuery((stream.id,), start=15, end=30))
        assert [e.message for e in ranged] == ["ccc"]
        assert [g.name for g in await tx.logs.groups(ACCOUNT, "/ecs")] == ["/ecs/app"]
        assert await tx.logs.groups(ACCOUNT, "/other") == []
    async with store.write() as tx:
        assert await tx.logs.delete_group(ACCOUNT, "/ecs/app")
    async with store.read() as tx:
        assert await tx.logs.events(EventQuery((stream.id,))) == []
