"""A short-lived cache of what the hot paths read from the metadata store.

Every `/v2/` request asks the same questions: whose token is this, what may that principal do,
what policies and tags does the repository carry, which repository is this name. The answers
change rarely, so each is kept for `ttl` seconds while the store's generations stand still: a
cache of content (blob links, manifests, tags) watches `Metadata.content_generation`, every
other cache `Metadata.generation`, so a push keeps the cached principals, policies and
decisions (see `ports.metadata.Changes`). The generations count the committed writes of every
process and node of the registry, and `fetch` first awaits `Metadata.observe()`, so a request
sees every write committed before it came, wherever it was made (`metadata.generations`).

`fetch` reads through the cache with one read per key at a time: when an entry expires under
load, the requests that miss it wait for the one read already under way instead of each
queueing its own on the database (which made every expiry a burst of slow requests).

Each cache has a name (`tokens`, `manifests`, …) and counts its hits and misses in
`CACHE_COUNTS[name]`, shared by every cache of that name: two integer additions per lookup, which
the metrics read on their own schedule (`cargohold.metrics`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cargohold.ports import Metadata

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_TTL = 2.0


class CacheCounts:
    """Lookups of the caches of one name so far: found and fresh (`hits`), or not."""

    __slots__ = ("hits", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0


#: Per cache name, its lookups so far (this process).
CACHE_COUNTS: dict[str, CacheCounts] = {}


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    generation: int
    stored_at: float


class ReadCache(Generic[K, V]):
    def __init__(
        self,
        store: Metadata,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        content: bool = False,
        name: str = "other",
    ) -> None:
        self._store = store
        self._counts = CACHE_COUNTS.setdefault(name, CacheCounts())
        self._content = content
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}

    def generation(self) -> int:
        """Take this before reading; `put` the value read with it, so that a write that lands
        during the read makes the entry stale at once."""
        return self._store.content_generation if self._content else self._store.generation

    def get(self, key: K) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None:
            self._counts.misses += 1
            return False, None
        store = self._store  # `generation()`, inline: every cached read of a request asks
        current = store.content_generation if self._content else store.generation
        if entry.generation != current or self._clock() - entry.stored_at > self._ttl:
            del self._entries[key]
            self._counts.misses += 1
            return False, None
        self._counts.hits += 1
        return True, entry.value

    def put(self, key: K, value: V, generation: int) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = _Entry(value, generation, self._clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def fetch(
        self,
        key: K,
        load: Callable[[], Awaitable[V]],
        *,
        keep: Callable[[V], bool] | None = None,
    ) -> V:
        """The cached value of `key`, else what `load()` returns, kept unless `keep` says no.

        Concurrent misses of one key share a single `load()`; its exception, if it raises,
        reaches every caller waiting for it."""
        if (observing := self._store.observe()) is not None:
            await observing
        found, value = self.get(key)
        if found:
            return value  # type: ignore[return-value]  # a stored V, possibly None
        while (pending := self._loading.get(key)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not pending.cancelled() or (current is not None and current.cancelling()):
                    raise
                # The loader was cancelled, not this caller: load it here instead.
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = self.generation()
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(value)
            if keep is None or keep(value):
                self.put(key, value, generation)
            return value
        finally:
            if self._loading.get(key) is future:
                del self._loading[key]
