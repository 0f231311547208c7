"""The event outbox: events written in the transaction of their change, read in id order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cargohold.domain.ecrevents import EcrEvent


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    #: Epoch seconds: when the event was written.
    created_at: float
    #: The whole event as JSON text.
    document: str


class Outbox(Protocol):
    """Ids grow in commit order: a reader that has seen id N will never see a smaller id
    appear later, so a cursor (the last id a reader handled) loses nothing."""

    async def append_events(self, events: Sequence[EcrEvent]) -> None:
        """Write `events`, in order, in this write transaction: they exist if and only if it
        commits. Call it last in the transaction: on PostgreSQL it holds the outbox's lock from
        here until the commit (see `metadata.outbox`)."""
        ...

    async def events_after(self, after_id: int, limit: int) -> list[OutboxRecord]:
        """At most `limit` committed events with an id above `after_id`, by ascending id."""
        ...

    async def last_event_id(self) -> int:
        """The highest id written so far (0 when there is none)."""
        ...

    async def get_cursor(self, target: str) -> int:
        """The last event id `target` has handled (0 when it has none)."""
        ...

    async def advance_cursor(self, target: str, expected: int, new: int, now: float) -> bool:
        """Compare-and-set: move `target`'s cursor from `expected` to `new`; False when it is
        no longer at `expected` (another deliverer moved it). A target without a cursor is at
        0, and its row is created."""
        ...

    async def cursors(self) -> dict[str, int]:
        """Every target's cursor."""
        ...

    async def delete_cursor(self, target: str) -> bool:
        """Forget `target`'s cursor (a target removed); whether it had one."""
        ...

    async def delete_events_through(self, event_id: int) -> int:
        """Delete the events with an id up to `event_id`; how many."""
        ...

    async def delete_events_before(self, created_before: float, through_id: int) -> int:
        """Delete the events written before `created_before` whose id is at most
        `through_id` (what every cursor has passed); how many."""
        ...
