"""The read cache: answers kept for their lifetime, dropped at once by this process's writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargohold.metadata.database import upgrade
from cargohold.metadata.store import MetadataStore
from cargohold.service.readcache import ReadCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


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
    async with store.write(invalidates=False) as tx:
        await tx.ensure_registry("123456789012", "us-east-1", 1.0)
    assert cache.get("k") == (True, 1), "a write that changes no cached read keeps the cache"
    async with store.write() as tx:
        await tx.ensure_registry("123456789012", "us-east-1", 1.0)
    assert cache.get("k") == (False, None)
    await store.close()


@pytest.mark.anyio
async def test_a_value_read_while_a_write_landed_is_not_kept(store: MetadataStore) -> None:
    cache: ReadCache[str, int] = ReadCache(store, clock=Clock())
    generation = cache.generation()  # taken before the read …
    async with store.write() as tx:  # … a write commits during it …
        await tx.ensure_registry("123456789012", "us-east-1", 1.0)
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
