"""Generations shared by every process of one database: a write through one store drops what
another store (another process, or node, of the same registry) has cached, at once.

Two `MetadataStore`s on one database stand for two processes: each has its own engine, its own
generations and, on PostgreSQL, its own `LISTEN` connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread
import psycopg
import pytest

from cargohold.metadata import database
from cargohold.metadata.generations import SqliteGenerations
from cargohold.metadata.notifications import PostgresGenerations
from cargohold.metadata.store import MetadataStore
from cargohold.ports import Changes
from cargohold.service.readcache import ReadCache
from support.waiting import wait_until_async

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
ROUNDS = 50


@pytest.fixture
async def stores(db_url: str) -> AsyncIterator[tuple[MetadataStore, MetadataStore]]:
    """Two processes' stores on one database, following each other's writes."""
    await anyio.to_thread.run_sync(database.upgrade, db_url)
    pair = (MetadataStore.from_url(db_url), MetadataStore.from_url(db_url))
    try:
        for store in pair:
            await store.start()
        yield pair
    finally:
        for store in pair:
            await store.close()


async def write(store: MetadataStore, changes: Changes = Changes.ANYTHING) -> None:
    async with store.write(changes=changes) as tx:
        await tx.registries.ensure_registry(ACCOUNT, "us-east-1", 1.0)


async def request(cache: ReadCache[str, int], load: Loads) -> int:
    """`cache.fetch("k", load)` as a request does: in a task of its own. A request sees every
    write committed before it came; writes during it are concurrent with it."""
    return await asyncio.create_task(cache.fetch("k", load))


class Loads:
    """What a cache reads on a miss: the number of reads so far."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> int:
        self.count += 1
        return self.count


async def test_a_write_through_one_store_drops_the_other_stores_cache_at_once(
    stores: tuple[MetadataStore, MetadataStore],
) -> None:
    cache: ReadCache[str, int] = ReadCache(stores[1])
    load = Loads()
    for round_ in range(ROUNDS):
        kept = await request(cache, load)
        assert await request(cache, load) == kept, "kept while nothing is written"
        await write(stores[0])
        assert await request(cache, load) == kept + 1, f"round {round_}: not dropped"


async def test_a_content_write_elsewhere_drops_content_only(
    stores: tuple[MetadataStore, MetadataStore],
) -> None:
    policies: ReadCache[str, int] = ReadCache(stores[1])
    manifests: ReadCache[str, int] = ReadCache(stores[1], content=True)
    policy_loads, manifest_loads = Loads(), Loads()
    assert await request(policies, policy_loads) == 1
    assert await request(manifests, manifest_loads) == 1
    await write(stores[0], Changes.CONTENT)
    assert await request(policies, policy_loads) == 1, "a push elsewhere keeps policies"
    assert await request(manifests, manifest_loads) == 2, "a push elsewhere drops content"
    await write(stores[0], Changes.NOTHING)
    assert await request(manifests, manifest_loads) == 2, "nothing cached changed"
    await write(stores[0])
    assert await request(policies, policy_loads) == 2
    assert await request(manifests, manifest_loads) == 3


async def test_a_failed_write_tells_no_other_store(
    stores: tuple[MetadataStore, MetadataStore],
) -> None:
    cache: ReadCache[str, int] = ReadCache(stores[1])
    load = Loads()
    assert await request(cache, load) == 1
    with pytest.raises(RuntimeError):
        async with stores[0].write() as tx:
            await tx.registries.ensure_registry(ACCOUNT, "us-east-1", 1.0)
            raise RuntimeError("rolled back")
    assert await request(cache, load) == 1, "a rolled-back write changed nothing"


# -- SQLite: the generations row -------------------------------------------------------------


def bump_row(path: Path) -> None:
    """Commit a write of another process, without letting the event loop turn."""
    with sqlite3.connect(path) as other:
        other.execute("UPDATE generations SET anything = anything + 1, content = content + 1")


async def next_turn() -> None:
    """Let the event loop run what was scheduled before now (one turn)."""
    loop = asyncio.get_running_loop()
    turned: asyncio.Future[None] = loop.create_future()
    loop.call_soon(turned.set_result, None)
    await turned


async def test_sqlite_reads_the_row_once_per_turn_of_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    await anyio.to_thread.run_sync(database.upgrade, f"sqlite:///{path}")
    generations = SqliteGenerations(str(path))
    try:
        before = generations.anything
        bump_row(path)
        # Whatever runs in this turn came in before the write committed: it may see before it.
        assert generations.anything == before
        await next_turn()
        # A request that comes after the write is read in a later turn, and sees it.
        assert generations.anything == before + 1
    finally:
        await generations.close()


async def test_sqlite_trusts_nothing_when_the_row_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    await anyio.to_thread.run_sync(database.upgrade, f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM generations")
    generations = SqliteGenerations(str(path))
    try:
        seen = {generations.anything for _ in range(3)}
        assert len(seen) == 3, "every read differs, so nothing cached is used"
    finally:
        await generations.close()


# -- PostgreSQL: NOTIFY, one LISTEN connection, one round trip per request --------------------


@pytest.fixture
async def pg_stores(postgres_url: str) -> AsyncIterator[tuple[MetadataStore, MetadataStore]]:
    await anyio.to_thread.run_sync(database.upgrade, postgres_url)
    pair = (MetadataStore.from_url(postgres_url), MetadataStore.from_url(postgres_url))
    try:
        for store in pair:
            await store.start()
        yield pair
    finally:
        for store in pair:
            await store.close()


def listener_of(store: MetadataStore) -> PostgresGenerations:
    generations = store._generations
    assert isinstance(generations, PostgresGenerations)
    return generations


async def test_postgres_one_round_trip_serves_a_whole_request(
    pg_stores: tuple[MetadataStore, MetadataStore],
) -> None:
    store = pg_stores[1]

    async def one_request() -> list[bool]:
        waits = []
        for _ in range(3):
            observing = store.observe()
            waits.append(observing is not None)
            if observing is not None:
                await observing
        return waits

    assert await asyncio.create_task(one_request()) == [True, False, False]
    assert await asyncio.create_task(one_request()) == [True, False, False], "each one waits"


async def test_postgres_concurrent_requests_share_round_trips(
    pg_stores: tuple[MetadataStore, MetadataStore],
) -> None:
    cache: ReadCache[str, int] = ReadCache(pg_stores[1])
    load = Loads()
    await request(cache, load)
    await write(pg_stores[0])
    # A hundred requests that came after the write all see it, and read it once.
    results = await asyncio.gather(*(request(cache, load) for _ in range(100)))
    assert set(results) == {2} and load.count == 2


async def test_postgres_trusts_nothing_before_it_listens(postgres_url: str) -> None:
    await anyio.to_thread.run_sync(database.upgrade, postgres_url)
    store = MetadataStore.from_url(postgres_url)  # a one-off command's store: never started
    try:
        cache: ReadCache[str, int] = ReadCache(store)
        load = Loads()
        assert [await request(cache, load) for _ in range(3)] == [1, 2, 3]
    finally:
        await store.close()


async def test_postgres_a_lost_listener_reconnects_and_drops_what_it_may_have_missed(
    pg_stores: tuple[MetadataStore, MetadataStore],
) -> None:
    store = pg_stores[1]
    cache: ReadCache[str, int] = ReadCache(store)
    load = Loads()
    assert await request(cache, load) == await request(cache, load) == 1
    listener = listener_of(store)
    pid = listener.backend_pid
    with psycopg.connect(database.libpq_url(postgres_url_of(store)), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    await write(pg_stores[0])  # perhaps while nobody listens

    async def back() -> bool:
        return listener.live and listener.backend_pid != pid

    await wait_until_async(back, message="the listener never reconnected")
    assert await request(cache, load) == 2, "what was cached before is not trusted"
    assert await request(cache, load) == 2, "cached again once it listens again"
    await write(pg_stores[0])
    assert await request(cache, load) == 3


def postgres_url_of(store: MetadataStore) -> str:
    return store.engine.url.render_as_string(hide_password=False)
