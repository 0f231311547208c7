"""CloudWatch Logs, the subset ECS's `awslogs` driver writes and `aws logs` reads.

Groups hold streams, streams hold events (a timestamp and a message, in milliseconds since the
epoch), read back in the order they were put: GetLogEvents from the head or the tail of one
stream, with forward and backward tokens; FilterLogEvents across a group's streams, matching a
filter pattern of terms (every term must appear) or a quoted phrase, in pages. Put events must
be in chronological order within one call, as CloudWatch Logs requires. Listings of groups and
streams come in pages of `limit` (50 unless set), their `nextToken` the position of the next.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cargohold.domain.errors import RegistryError
from cargohold.ports import EventQuery, LogEvent, LogGroup, LogStream, Metadata, Transaction

MAX_EVENTS = 10000
#: Listings of groups and streams: the page size unless the call sets `limit`.
DEFAULT_LIMIT = 50
#: FilterLogEvents reads at most this many batches of MAX_EVENTS per call; a page that stops
#: there may hold fewer events than its limit, and its token goes on where it stopped.
FILTER_BATCHES = 10
_TOKEN = re.compile(r"([fb])/(\d{1,19})", re.ASCII)


class LogsError(RegistryError):
    code = "InvalidParameterException"


class InvalidParameter(LogsError):
    code = "InvalidParameterException"


class ResourceNotFound(LogsError):
    code = "ResourceNotFoundException"


class ResourceAlreadyExists(LogsError):
    code = "ResourceAlreadyExistsException"


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


@dataclass(frozen=True, slots=True)
class FilteredEvents:
    events: list[LogEvent]
    streams: list[str]
    next_token: str | None


def _position(token: object) -> int:
    """A listing's or FilterLogEvents' `nextToken`: the position it names."""
    if token is None or token == "":
        return 0
    text = str(token)
    if not text.isdigit() or len(text) > 19:
        raise InvalidParameter("The specified nextToken is invalid.")
    return int(text)


def page_of(items: list[T], params: Mapping[str, Any]) -> Page[T]:
    """The page of `items` a listing's `nextToken` and `limit` select."""
    start = _position(params.get("nextToken"))
    limit = int(params.get("limit") or DEFAULT_LIMIT)
    following = str(start + limit) if start + limit < len(items) else None
    return Page(items[start : start + limit], following)


def group_name(region: str, account: str, params: Mapping[str, Any]) -> str:
    """The group a call names, by `logGroupName` or `logGroupIdentifier` (a name or an ARN)."""
    name = params.get("logGroupName")
    identifier = params.get("logGroupIdentifier")
    if name and identifier:
        raise InvalidParameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if identifier:
        prefix = f"arn:aws:logs:{region}:{account}:log-group:"
        name = str(identifier).removeprefix(prefix).removesuffix(":*")
    if not name:
        raise InvalidParameter("Should provide either logGroupName or logGroupIdentifier.")
    return str(name)


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[LogEvent]
    forward: str
    backward: str


def matches(pattern: str, message: str) -> bool:
    """A filter pattern of space-separated terms (all must appear) or one quoted phrase."""
    pattern = pattern.strip()
    if not pattern:
        return True
    if len(pattern) >= 2 and pattern[0] == pattern[-1] == '"':
        return pattern[1:-1] in message
    return all(term.strip('"') in message for term in pattern.split())


class LogsService:
    def __init__(self, store: Metadata, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock() * 1000)

    async def create_group(self, account: str, name: str, tags: Mapping[str, str]) -> None:
        async with self._store.write() as tx:
            if not await tx.logs.insert_group(account, name, self._now(), dict(tags)):
                raise ResourceAlreadyExists("The specified log group already exists")

    async def groups(self, account: str, params: Mapping[str, Any]) -> Page[LogGroup]:
        async with self._store.read() as tx:
            found = await tx.logs.groups(account, params.get("logGroupNamePrefix") or "")
        return page_of(found, params)

    async def delete_group(self, account: str, name: str) -> None:
        async with self._store.write() as tx:
            if not await tx.logs.delete_group(account, name):
                raise ResourceNotFound("The specified log group does not exist.")

    async def _group(self, tx: Transaction, account: str, name: str) -> LogGroup:
        found = await tx.logs.group(account, name)
        if found is None:
            raise ResourceNotFound("The specified log group does not exist.")
        return found

    async def create_stream(self, account: str, group: str, name: str) -> None:
        async with self._store.write() as tx:
            found = await self._group(tx, account, group)
            if not await tx.logs.insert_stream(found.id, name, self._now()):
                raise ResourceAlreadyExists("The specified log stream already exists")

    async def streams(self, account: str, group: str, params: Mapping[str, Any]) -> Page[LogStream]:
        """DescribeLogStreams: by name, or by last event time with `orderBy`; `descending`."""
        async with self._store.read() as tx:
            found = await self._group(tx, account, group)
            streams = await tx.logs.streams(found.id, params.get("logStreamNamePrefix") or "")
        if params.get("orderBy") == "LastEventTime":
            streams.sort(key=lambda s: s.last_event or 0)
        if params.get("descending"):
            streams.reverse()
        return page_of(streams, params)

    async def _stream(self, tx: Transaction, account: str, group: str, name: str) -> LogStream:
        found = await self._group(tx, account, group)
        for stream in await tx.logs.streams(found.id, name):
            if stream.name == name:
                return stream
        raise ResourceNotFound("The specified log stream does not exist.")

    async def put(
        self, account: str, group: str, stream: str, events: Sequence[Mapping[str, Any]]
    ) -> None:
        pairs = [(int(e["timestamp"]), str(e["message"])) for e in events]
        if any(b[0] < a[0] for a, b in itertools.pairwise(pairs)):
            raise InvalidParameter(
                "Log events in a single PutLogEvents request must be in chronological order."
            )
        async with self._store.write() as tx:
            found = await self._stream(tx, account, group, stream)
            await tx.logs.append(found, pairs, self._now())

    async def get_events(
        self, account: str, group: str, stream: str, params: Mapping[str, Any]
    ) -> EventPage:
        limit = min(int(params.get("limit") or MAX_EVENTS), MAX_EVENTS)
        token = params.get("nextToken")
        direction, position = "", 0
        if token:
            found_token = _TOKEN.fullmatch(str(token))
            if found_token is None:
                raise InvalidParameter("The specified nextToken is invalid.")
            direction, position = found_token.group(1), int(found_token.group(2))
        from_head = direction == "f" or (not direction and bool(params.get("startFromHead")))
        async with self._store.read() as tx:
            found = await self._stream(tx, account, group, stream)
            query = EventQuery(
                (found.id,),
                start=params.get("startTime"),
                end=params.get("endTime"),
                after=position if direction == "f" else None,
                before=position if direction == "b" else None,
                limit=limit,
                newest_first=not from_head,
            )
            events = await tx.logs.events(query)
        events.sort(key=lambda e: e.id)
        first = events[0].id if events else position
        last = events[-1].id if events else position
        return EventPage(events, f"f/{last:019d}", f"b/{first:019d}")

    async def filter_events(
        self, account: str, group: str, params: Mapping[str, Any]
    ) -> FilteredEvents:
        """Events of the group's streams (all, or those named or prefixed) in the order they
        were put, matching the pattern; `nextToken` is the id of the last event a page read."""
        limit = min(int(params.get("limit") or MAX_EVENTS), MAX_EVENTS)
        names = set(params.get("logStreamNames") or [])
        after = _position(params.get("nextToken"))
        pattern = str(params.get("filterPattern") or "")
        matched: list[LogEvent] = []
        async with self._store.read() as tx:
            found = await self._group(tx, account, group)
            streams = await tx.logs.streams(found.id, params.get("logStreamNamePrefix") or "")
            streams = [s for s in streams if not names or s.name in names]
            for _ in range(FILTER_BATCHES if streams else 0):
                query = EventQuery(
                    [s.id for s in streams],
                    start=params.get("startTime"),
                    end=params.get("endTime"),
                    after=after,
                    limit=MAX_EVENTS,
                )
                batch = await tx.logs.events(query)
                for event in batch:
                    after = event.id
                    if matches(pattern, event.message):
                        matched.append(event)
                        if len(matched) == limit:
                            return FilteredEvents(matched, [s.name for s in streams], str(after))
                if len(batch) < MAX_EVENTS:
                    return FilteredEvents(matched, [s.name for s in streams], None)
        return FilteredEvents(matched, [s.name for s in streams], str(after) if streams else None)
