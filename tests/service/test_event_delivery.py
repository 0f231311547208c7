"""Event delivery on the real outbox and leases, with a recording sender in place of HTTP: in
order, signed, filtered, retried without loss, one deliverer per target."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from cargohold.domain.ecrevents import IMAGE_ACTION, EcrEvent
from cargohold.domain.eventpattern import EventPattern
from cargohold.domain.webhooksigning import EVENT_ID_HEADER, verify
from cargohold.metadata.store import MetadataStore
from cargohold.service.event_delivery import Backoff, EventDelivery, WebhookTarget
from support.waiting import wait_until_async

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

SECRET = b"target-secret"
URL = "http://receiver.test/hook"


class Receiver:
    """A sender that records what it was given, answering each request from `answer`."""

    def __init__(self, answer: Callable[[int], int] = lambda n: 200) -> None:
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []
        self.answer = answer
        self.accepted: list[dict[str, Any]] = []

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], time_limit: float
    ) -> int:
        self.requests.append((url, body, dict(headers)))
        status = self.answer(len(self.requests))
        if status < 0:
            raise ConnectionRefusedError("refused")
        if 200 <= status < 300:
            self.accepted.append(json.loads(body))
        return status

    def tags(self) -> list[str]:
        return [event["detail"]["image-tag"] for event in self.accepted]


def push(tag: str, repository: str = "team/app", action: str = "PUSH") -> EcrEvent:
    detail = {
        "result": "SUCCESS",
        "repository-name": repository,
        "image-digest": "sha256:" + "a" * 64,
        "action-type": action,
        "image-tag": tag,
    }
    return EcrEvent(IMAGE_ACTION, "123456789012", "us-east-1", 1.7e9, detail)


async def append(store: MetadataStore, *events: EcrEvent) -> None:
    async with store.write() as tx:
        await tx.outbox.append_events(events)


def target(name: str = "ci", pattern: dict[str, Any] | None = None) -> WebhookTarget:
    parsed = None if pattern is None else EventPattern.parse(pattern)
    return WebhookTarget(name, URL, SECRET, parsed, timeout=5.0)


@asynccontextmanager
async def running(
    store: MetadataStore,
    receiver: Receiver,
    *targets: WebhookTarget,
    lease: float = 0.6,
    poll: float = 0.02,
    observer: Any = None,
) -> AsyncIterator[EventDelivery]:
    delivery = EventDelivery(
        store,
        targets or (target(),),
        receiver,
        time.time,
        retry_first=0.01,
        retry_max=0.05,
        poll_interval=poll,
        lease=lease,
        **({"observer": observer} if observer is not None else {}),
    )
    await delivery.start()
    try:
        yield delivery
    finally:
        await delivery.stop()


async def cursor(store: MetadataStore, name: str = "ci") -> int:
    async with store.read() as tx:
        return await tx.outbox.get_cursor(name)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async def check() -> bool:
        return predicate()

    await wait_until_async(check, timeout=timeout, message=what)


async def test_events_arrive_in_order_signed_as_stored(store: MetadataStore) -> None:
    receiver = Receiver()
    async with running(store, receiver):
        await wait_until_async(lambda: cursor_exists(store), message="the cursor was set")
        events = [push(f"v{i}") for i in range(5)]
        await append(store, *events[:2])
        await append(store, *events[2:])
        await until(lambda: len(receiver.accepted) == 5, "five events delivered")
        async with store.read() as tx:
            last = await tx.outbox.last_event_id()
        # The cursor moves once the answer is in: wait for it before stopping.
        await wait_until_async(lambda: at(store, last), message="the cursor passed them")
    assert receiver.tags() == ["v0", "v1", "v2", "v3", "v4"]
    for (url, body, headers), event in zip(receiver.requests, events, strict=True):
        assert url == URL
        assert body == event.to_json().encode()
        assert headers["Content-Type"] == "application/json"
        assert headers[EVENT_ID_HEADER] == event.id
        assert verify(SECRET, headers, body, time.time())
        assert not verify(b"other", headers, body, time.time())


async def cursor_exists(store: MetadataStore, name: str = "ci") -> bool:
    async with store.read() as tx:
        return name in await tx.outbox.cursors()


async def test_a_new_target_starts_after_the_newest_event(store: MetadataStore) -> None:
    await append(store, push("old"))
    receiver = Receiver()
    async with running(store, receiver):
        await wait_until_async(lambda: cursor_exists(store), message="the cursor was set")
        await append(store, push("new"))
        await until(lambda: len(receiver.accepted) == 1, "the new event delivered")
    assert receiver.tags() == ["new"]


async def test_the_pattern_filters_and_the_cursor_passes_what_it_skips(
    store: MetadataStore,
) -> None:
    receiver = Receiver()
    deletes = target(pattern={"detail": {"action-type": ["DELETE"]}})
    async with running(store, receiver, deletes):
        await wait_until_async(lambda: cursor_exists(store), message="the cursor was set")
        await append(store, push("a"), push("b", action="DELETE"), push("c"), push("d"))
        async with store.read() as tx:
            last = await tx.outbox.last_event_id()
        await wait_until_async(lambda: at(store, last), message="the cursor passed every event")
    assert receiver.tags() == ["b"]


async def at(store: MetadataStore, event_id: int) -> bool:
    return await cursor(store) == event_id


async def test_failures_are_retried_without_loss_or_reordering(store: MetadataStore) -> None:
    # Refused, then errors, then accepted: every event arrives, in order, once accepted.
    answers = {1: -1, 2: 503, 3: 500, 5: -1, 6: 404}
    receiver = Receiver(lambda n: answers.get(n, 204))
    async with running(store, receiver):
        await wait_until_async(lambda: cursor_exists(store), message="the cursor was set")
        await append(store, *(push(f"v{i}") for i in range(4)))
        await until(lambda: len(receiver.accepted) == 4, "four events delivered")
    assert receiver.tags() == ["v0", "v1", "v2", "v3"]
    sent = [json.loads(body)["detail"]["image-tag"] for _, body, _ in receiver.requests]
    assert sent == ["v0", "v0", "v0", "v0", "v1", "v1", "v1", "v2", "v3"]


class Sends:
    """An observer keeping each attempt it is told of."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, bool, float]] = []

    def event_sent(self, target: str, *, delivered: bool, lag: float) -> None:
        self.attempts.append((target, delivered, lag))


async def test_each_attempt_is_reported_with_its_result_and_lag(store: MetadataStore) -> None:
    answers = {1: 503, 2: -1}
    receiver = Receiver(lambda n: answers.get(n, 200))
    sends = Sends()
    async with running(store, receiver, observer=sends):
        await wait_until_async(lambda: cursor_exists(store), message="the cursor was set")
        await append(store, push("a"))
        await until(lambda: len(receiver.accepted) == 1, "delivered after two failures")
    assert [(t, ok) for t, ok, _ in sends.attempts] == [("ci", False), ("ci", False), ("ci", True)]
    lag = sends.attempts[-1][2]
    assert lag == pytest.approx(time.time() - 1.7e9, abs=60)  # the event's time is 1.7e9


async def test_the_cursor_stays_while_the_receiver_is_down(store: MetadataStore) -> None:
    up = False
    receiver = Receiver(lambda n: 200 if up else -1)
    async with running(store, receiver):
        await wait_until_async(lambda: cursor_exists(store), message="the cursor was set")
        start = await cursor(store)
        await append(store, push("a"), push("b"))
        await until(lambda: len(receiver.requests) >= 4, "several attempts")
        assert await cursor(store) == start
        up = True
        await until(lambda: len(receiver.accepted) == 2, "both delivered once up")
    assert receiver.tags() == ["a", "b"]


async def test_one_deliverer_per_target_and_a_takeover_when_it_stops(
    store: MetadataStore,
) -> None:
    first, second = Receiver(), Receiver()
    # A lease long enough that a loaded machine renews it in time: the test is about who holds it.
    async with (
        running(store, first, lease=3.0) as one,
        running(store, second, lease=3.0) as two,
    ):
        await wait_until_async(lambda: cursor_exists(store), message="the cursor was set")
        await append(store, *(push(f"v{i}") for i in range(3)))
        await until(lambda: len(first.accepted) + len(second.accepted) == 3, "three delivered")
        holders = [d for d, r in ((one, first), (two, second)) if r.accepted]
        assert len(holders) == 1, "both processes delivered"
        holder = holders[0]
        await holder.stop()  # gives its lease up
        await append(store, push("after"))
        other = second if holder is one else first
        await until(lambda: bool(other.accepted), "the other process took over")
    assert [e["detail"]["image-tag"] for e in first.accepted + second.accepted].count("v0") == 1
    assert other.tags()[-1] == "after"


async def test_a_dead_deliverers_lease_runs_out(store: MetadataStore) -> None:
    async with store.write() as tx:  # a process that died holding the lease
        assert await tx.leases.acquire("events:ci", "dead", time.time(), time.time() + 0.5)
    receiver = Receiver()
    async with running(store, receiver):
        await wait_until_async(lambda: cursor_exists(store), message="the lease ran out")
        await append(store, push("a"))
        await until(lambda: len(receiver.accepted) == 1, "delivered")


async def test_every_target_follows_its_own_cursor(store: MetadataStore) -> None:
    receiver = Receiver()
    pushes = target("pushes", {"detail": {"action-type": ["PUSH"]}})
    everything = target("everything")
    async with running(store, receiver, pushes, everything):
        await wait_until_async(lambda: cursor_exists(store, "pushes"), message="cursor set")
        await wait_until_async(lambda: cursor_exists(store, "everything"), message="set")
        await append(store, push("a"), push("b", action="DELETE"))
        await until(lambda: len(receiver.accepted) == 3, "three requests accepted")
    assert sorted(receiver.tags()) == ["a", "a", "b"]


async def test_a_document_that_is_not_json_is_skipped(store: MetadataStore) -> None:
    receiver = Receiver()
    async with running(store, receiver):
        await wait_until_async(lambda: cursor_exists(store), message="the cursor was set")
        async with store.write() as tx:  # a damaged row
            await tx.outbox.append_events([push("a")])
            await tx.conn.exec_driver_sql("UPDATE event_outbox SET document = 'not json'")
        await append(store, push("b"))
        await until(lambda: len(receiver.accepted) == 1, "the next event delivered")
    assert receiver.tags() == ["b"]


async def test_a_write_wakes_an_idle_deliverer_before_its_poll(store: MetadataStore) -> None:
    receiver = Receiver()
    async with running(store, receiver, poll=60.0):
        await wait_until_async(lambda: cursor_exists(store), message="the cursor was set")
        await append(store, push("a"))  # a write transaction moves the store's generations
        await until(lambda: len(receiver.accepted) == 1, "delivered long before a poll")


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    low, high = Backoff(1.0, 60.0, lambda: 0.0), Backoff(1.0, 60.0, lambda: 1.0)
    assert [high.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert [low.delay(n) for n in range(1, 4)] == [0.5, 1, 2]
    assert low.delay(20) == 30


def test_the_secret_is_not_in_the_targets_repr() -> None:
    assert "target-secret" not in repr(target())
