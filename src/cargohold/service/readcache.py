"""A short-lived cache of what the hot paths read from the metadata store.

Every `/v2/` request asks the same questions: whose token is this, what may that principal do,
what policies and tags does the repository carry, which repository is this name. The answers
change rarely, so each is kept for `ttl` seconds — and dropped at once when this process writes
to the store (`MetadataStore.generation` moves on every committed write that may change them).
Other processes and nodes see a change within `ttl`, the same bounded staleness as IAM's own
propagation.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cargohold.metadata.store import MetadataStore

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_TTL = 2.0


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    generation: int
    stored_at: float


class ReadCache(Generic[K, V]):
    def __init__(
        self,
        store: MetadataStore,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()

    def generation(self) -> int:
        """Take this before reading; `put` the value read with it, so that a write that lands
        during the read makes the entry stale at once."""
        return self._store.generation

    def get(self, key: K) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if (
            entry.generation != self._store.generation
            or self._clock() - entry.stored_at > self._ttl
        ):
            del self._entries[key]
            return False, None
        return True, entry.value

    def put(self, key: K, value: V, generation: int) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = _Entry(value, generation, self._clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
