"""Named leases on SQLite and PostgreSQL: one holder at a time, taken over once run out."""

from __future__ import annotations

import anyio
import anyio.to_thread
import pytest

from cargohold.metadata.store import MetadataStore

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]


async def acquire(store: MetadataStore, holder: str, now: float, until: float) -> bool:
    async with store.write() as tx:
        return await tx.leases.acquire("events:ci", holder, now, until)


async def test_one_holder_until_its_lease_runs_out(store: MetadataStore) -> None:
    assert await acquire(store, "a", 100.0, 115.0)
    assert not await acquire(store, "b", 101.0, 116.0)
    assert await acquire(store, "a", 105.0, 120.0)  # renewed
    assert not await acquire(store, "b", 119.0, 134.0)
    async with store.read() as tx:
        assert await tx.leases.holder("events:ci", 119.0) == "a"
        assert await tx.leases.holder("events:ci", 121.0) is None
        assert await tx.leases.holder("events:other", 0.0) is None
    assert await acquire(store, "b", 121.0, 136.0)  # a stopped renewing
    assert not await acquire(store, "a", 122.0, 137.0)


async def test_release(store: MetadataStore) -> None:
    assert await acquire(store, "a", 0.0, 15.0)
    async with store.write() as tx:
        assert not await tx.leases.release("events:ci", "b")
        assert await tx.leases.release("events:ci", "a")
        assert not await tx.leases.release("events:ci", "a")
    assert await acquire(store, "b", 1.0, 16.0)


async def test_racing_for_a_free_lease_gives_it_to_one(store: MetadataStore) -> None:
    won: list[str] = []

    async def race(holder: str) -> None:
        if await acquire(store, holder, 0.0, 15.0):
            won.append(holder)

    async with anyio.create_task_group() as group:
        for holder in ("a", "b", "c", "d"):
            group.start_soon(race, holder)
    assert len(won) == 1
