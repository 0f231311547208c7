"""The read cache: answers kept for their lifetime, dropped at once by this process's writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from cargohold.metadata.database import upgrade
from cargohold.metadata.store import MetadataStore
from cargohold.ports import Changes
from cargohold.service.readcache import CACHE_COUNTS, ReadCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def fetching(
    cache: ReadCache[str, int], load: Callable[[], Awaitable[int]], count: int
) -> list[asyncio.Task[int]]:
    """`count` tasks fetching "k", returned once every one of them is inside `fetch`: a fetch
    does not suspend before it loads or joins the load under way."""
    entered = 0
    all_in = asyncio.Event()

    async def fetch() -> int:
        nonlocal entered
        entered += 1
        if entered == count:
            all_in.set()
        return await cache.fetch("k", load)

    tasks = [asyncio.create_task(fetch()) for _ in range(count)]
    await all_in.wait()
    return tasks


@pytest.fixture
async def store(tmp_path: Path) -> MetadataStore:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    return MetadataStore.from_url(url)


@pytest.mark.anyio
async def test_kept_for_its_lifetime_then_read_again(store: MetadataStore) -> None:
    clock = Clock()
    cache: ReadCache[str, int] = ReadCache(store, ttl=2.0, clock=clock)
    cache.put("k", 1, cache.generation())
    assert cache.get("k") == (True, 1)
    clock.now += 2.5
    assert cache.get("k") == (False, None)
    await store.close()


@pytest.mark.anyio
async def test_a_write_drops_every_entry_at_once(store: MetadataStore) -> None:
    cache: ReadCache[str, int] = ReadCache(store, clock=Clock())
    cache.put("k", 1, cache.generation())
    async with store.write(changes=Changes.NOTHING) as tx:
        await tx.registries.ensure_registry("123456789012", "us-east-1", 1.0)
    assert cache.get("k") == (True, 1), "a write that changes no cached read keeps the cache"
    async with store.write() as tx:
        await tx.registries.ensure_registry("123456789012", "us-east-1", 1.0)
    assert cache.get("k") == (False, None)
    await store.close()


@pytest.mark.anyio
async def test_a_content_write_drops_only_content(store: MetadataStore) -> None:
    policies: ReadCache[str, int] = ReadCache(store, clock=Clock())
    manifests: ReadCache[str, int] = ReadCache(store, clock=Clock(), content=True)
    policies.put("k", 1, policies.generation())
    manifests.put("k", 1, manifests.generation())
    async with store.write(changes=Changes.CONTENT) as tx:
        await tx.registries.ensure_registry("123456789012", "us-east-1", 1.0)
    assert policies.get("k") == (True, 1), "a push keeps who may do what"
    assert manifests.get("k") == (False, None), "a push drops what repositories hold"
    manifests.put("k", 1, manifests.generation())
    async with store.write() as tx:
        await tx.registries.ensure_registry("123456789012", "us-east-1", 1.0)
    assert policies.get("k") == (False, None) and manifests.get("k") == (False, None)
    await store.close()


@pytest.mark.anyio
async def test_a_value_read_while_a_write_landed_is_not_kept(store: MetadataStore) -> None:
    cache: ReadCache[str, int] = ReadCache(store, clock=Clock())
    generation = cache.generation()  # taken before the read …
    async with store.write() as tx:  # … a write commits during it …
        await tx.registries.ensure_registry("123456789012", "us-east-1", 1.0)
    cache.put("k", 1, generation)  # … so what was read may be old
    assert cache.get("k") == (False, None)
    await store.close()


@pytest.mark.anyio
async def test_bounded_in_size(store: MetadataStore) -> None:
    cache: ReadCache[int, int] = ReadCache(store, max_entries=3, clock=Clock())
    for n in range(5):
        cache.put(n, n, cache.generation())
    assert [cache.get(n)[0] for n in range(5)] == [False, False, True, True, True]
    await store.close()


@pytest.mark.anyio
async def test_concurrent_misses_share_one_read(store: MetadataStore) -> None:
    cache: ReadCache[str, int] = ReadCache(store, clock=Clock())
    reads = 0
    release = asyncio.Event()

    async def load() -> int:
        nonlocal reads
        reads += 1
        await release.wait()
        return 7

    waiters = await fetching(cache, load, 20)
    release.set()
    assert await asyncio.gather(*waiters) == [7] * 20
    assert reads == 1, "twenty misses of one key made one read"
    assert await cache.fetch("k", load) == 7 and reads == 1, "kept afterwards"
    await store.close()


@pytest.mark.anyio
async def test_a_failed_read_fails_every_waiter_and_is_not_kept(store: MetadataStore) -> None:
    cache: ReadCache[str, int] = ReadCache(store, clock=Clock())
    release = asyncio.Event()

    async def fail() -> int:
        await release.wait()
        raise LookupError("no such thing")

    waiters = await fetching(cache, fail, 3)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)

    async def succeed() -> int:
        return 1

    assert await cache.fetch("k", succeed) == 1
    await store.close()


@pytest.mark.anyio
async def test_keep_decides_what_is_kept(store: MetadataStore) -> None:
    cache: ReadCache[str, int | None] = ReadCache(store, clock=Clock())
    reads = 0

    async def missing() -> int | None:
        nonlocal reads
        reads += 1
        return None

    for _ in range(2):
        assert await cache.fetch("k", missing, keep=lambda v: v is not None) is None
    assert reads == 2, "a value `keep` refuses is read again next time"
    await store.close()


@pytest.mark.anyio
async def test_a_waiter_reads_itself_when_the_reader_is_cancelled(store: MetadataStore) -> None:
    cache: ReadCache[str, int] = ReadCache(store, clock=Clock())
    started = asyncio.Event()

    async def hang() -> int:
        started.set()
        await asyncio.Event().wait()
        return 0

    async def quick() -> int:
        return 5

    reader = asyncio.create_task(cache.fetch("k", hang))
    await started.wait()
    (waiter,) = await fetching(cache, quick, 1)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await asyncio.wait_for(waiter, 5) == 5
    await store.close()


@pytest.mark.anyio
async def test_hits_and_misses_are_counted_by_cache_name(store: MetadataStore) -> None:
    clock = Clock()
    first: ReadCache[str, int] = ReadCache(store, clock=clock, name="test-counts")
    second: ReadCache[str, int] = ReadCache(store, clock=clock, name="test-counts")
    counts = CACHE_COUNTS["test-counts"]
    hits, misses = counts.hits, counts.misses
    assert first.get("k") == (False, None)
    first.put("k", 1, first.generation())
    assert first.get("k") == (True, 1)

    async def two() -> int:
        return 2

    assert await second.fetch("k", two) == 2  # a miss, then kept
    assert await second.fetch("k", two) == 2  # a hit
    clock.now += 10
    assert first.get("k") == (False, None)  # expired: a miss
    assert (counts.hits - hits, counts.misses - misses) == (2, 3)
    await store.close()
