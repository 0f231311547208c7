"""The CloudWatch Logs role store: log groups, streams and their events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LogGroup:
    id: int
    name: str
    #: Milliseconds since the epoch, as CloudWatch Logs counts time.
    created_at: int
    retention_days: int | None
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class LogStream:
    id: int
    name: str
    created_at: int
    first_event: int | None
    last_event: int | None
    last_ingestion: int | None
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class LogEvent:
    id: int
    stream: str
    timestamp: int
    ingested_at: int
    message: str


@dataclass(frozen=True, slots=True)
class EventQuery:
    stream_ids: Sequence[int]
    start: int | None = None
    end: int | None = None
    #: Events after this id (forward) or before it (backward).
    after: int | None = None
    before: int | None = None
    limit: int = 10000
    #: Newest first, for a backward read.
    newest_first: bool = False


class LogStore(Protocol):
    async def insert_group(
        self, account: str, name: str, created_at: int, tags: dict[str, str]
    ) -> bool:
        """Whether it was inserted (False: it exists)."""
        ...

    async def group(self, account: str, name: str) -> LogGroup | None: ...

    async def groups(self, account: str, prefix: str) -> list[LogGroup]:
        """By name."""
        ...

    async def delete_group(self, account: str, name: str) -> bool: ...

    async def insert_stream(self, group_id: int, name: str, created_at: int) -> bool: ...

    async def streams(self, group_id: int, prefix: str = "") -> list[LogStream]:
        """By name."""
        ...

    async def append(
        self, stream: LogStream, events: Sequence[tuple[int, str]], ingested_at: int
    ) -> None:
        """Add (timestamp, message) events, in order, and what they change of the stream."""
        ...

    async def events(self, query: EventQuery) -> list[LogEvent]: ...
