"""The job runner over the jobs table, on SQLite and PostgreSQL: claims never overlap, a job
whose node died is claimed again when its lease runs out, retries with a delay, and gives up
through its kind's `give_up`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from cargohold.metadata.store import MetadataStore
from cargohold.service.jobs import JobKind, JobRunner
from support.waiting import wait_for_event

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]


async def enqueue(store: MetadataStore, kind: str, payload: dict[str, Any], now: float) -> int:
    async with store.write() as tx:
        return await tx.jobs.enqueue(kind, payload, now)


async def test_concurrent_claims_never_take_the_same_job(store: MetadataStore) -> None:
    for i in range(20):
        await enqueue(store, "noop", {"i": i}, 0.0)
    claimed: list[int] = []

    async def claimer(node: str) -> None:
        while True:
            async with store.write() as tx:
                job = await tx.jobs.claim(node, 1.0, 60.0)
            if job is None:
                return
            claimed.append(job.payload["i"])

    async with anyio.create_task_group() as group:
        for n in range(4):
            group.start_soon(claimer, f"node-{n}")
    assert sorted(claimed) == list(range(20))


async def test_a_dead_nodes_job_is_claimed_again_after_its_lease(
    store: MetadataStore, now: list[float]
) -> None:
    ran: list[dict[str, Any]] = []

    async def run(payload: dict[str, Any]) -> None:
        ran.append(payload)

    await enqueue(store, "work", {"n": 1}, now[0])
    async with store.write() as tx:
        assert await tx.jobs.claim("dead-node", now[0], 60.0) is not None
    runner = JobRunner(store, lambda: now[0], {"work": JobKind(run)})
    assert not await runner.run_one()  # still leased to the dead node
    now[0] += 61
    assert await runner.run_one()
    assert ran == [{"n": 1}]
    async with store.read() as tx:
        assert await tx.jobs.job_counts() == {"done": 1}


async def test_failures_retry_then_give_up(store: MetadataStore, now: list[float]) -> None:
    attempts: list[int] = []
    given_up: list[str] = []

    async def run(payload: dict[str, Any]) -> None:
        attempts.append(1)
        raise RuntimeError("boom")

    async def give_up(payload: dict[str, Any], error: str) -> None:
        given_up.append(error)

    runner = JobRunner(store, lambda: now[0], {"work": JobKind(run, give_up, max_attempts=3)})
    await enqueue(store, "work", {}, now[0])
    for _ in range(6):
        await runner.run_one()
        now[0] += 10  # past any retry delay
    assert len(attempts) == 3
    assert given_up == ["RuntimeError: boom"]
    async with store.read() as tx:
        assert await tx.jobs.job_counts() == {"failed": 1}


async def test_a_job_whose_last_attempt_died_is_given_up(
    store: MetadataStore, now: list[float]
) -> None:
    given_up: list[str] = []

    async def run(payload: dict[str, Any]) -> None:
        raise AssertionError("never runs again")

    async def give_up(payload: dict[str, Any], error: str) -> None:
        given_up.append(error)

    await enqueue(store, "work", {}, now[0])
    async with store.write() as tx:
        await tx.jobs.claim("dead-node", now[0], 60.0)
    now[0] += 61
    runner = JobRunner(store, lambda: now[0], {"work": JobKind(run, give_up, max_attempts=1)})
    assert await runner.run_one()
    assert given_up == ["the node running it stopped before it finished"]


async def test_the_runner_starts_woken_jobs_and_stops(store: MetadataStore) -> None:
    done = anyio.Event()

    async def run(payload: dict[str, Any]) -> None:
        done.set()

    runner = JobRunner(store, __import__("time").time, {"work": JobKind(run)}, poll_interval=30)
    await runner.start()
    try:
        await enqueue(store, "work", {}, 0.0)
        runner.wake()
        await wait_for_event(done, message="the woken job never ran")
    finally:
        await runner.stop()


async def test_attached_work_starts_after_the_runner_and_stops_in_reverse(
    store: MetadataStore,
) -> None:
    calls: list[str] = []

    def step(name: str) -> Any:
        async def record() -> None:
            calls.append(name)
            if name == "stop b":
                raise RuntimeError("a failing stop does not keep the others from stopping")

        return record

    runner = JobRunner(store, __import__("time").time, poll_interval=30)
    runner.attach(step("start a"), step("stop a"))
    runner.attach(step("start b"), step("stop b"))
    await runner.start()
    assert calls == ["start a", "start b"]
    await runner.stop()
    assert calls == ["start a", "start b", "stop b", "stop a"]


class Reports:
    """An observer that keeps what it was told."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, bool]] = []

    def job_finished(self, kind: str, seconds: float, *, failed: bool) -> None:
        assert seconds >= 0
        self.jobs.append((kind, failed))

    def scan_finished(
        self, status: str, seconds: float | None, severities: Mapping[str, int]
    ) -> None:
        raise AssertionError("no scans here")

    def decisions_recorded(self, denials: Mapping[str, int], failures: Mapping[str, int]) -> None:
        raise AssertionError("no decisions here")


async def test_each_run_is_reported_with_its_kind_and_outcome(
    store: MetadataStore, now: list[float]
) -> None:
    async def run(payload: dict[str, Any]) -> None:
        if payload["fail"]:
            raise RuntimeError("boom")

    reports = Reports()
    runner = JobRunner(
        store, lambda: now[0], {"good": JobKind(run), "bad": JobKind(run)}, observer=reports
    )
    await enqueue(store, "good", {"fail": False}, now[0])
    await enqueue(store, "bad", {"fail": True}, now[0])
    while await runner.run_one():
        pass
    assert sorted(reports.jobs) == [("bad", True), ("good", False)]
