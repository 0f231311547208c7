"""Delivery of ECR events from the outbox to webhook targets: at least once, in order.

Each target has a cursor in the database: the id of the last outbox event it has handled. Its
deliverer reads the events after the cursor in id order (commit order), skips those its pattern
does not match, and POSTs each matching one, signed (`domain.webhooksigning`), one at a time.
Only a 2xx answer moves the cursor on, with a compare-and-set; a refusal, an error or a timeout
leaves it where it is and the same event is sent again after a wait that doubles from
`retry_first` up to `retry_max`, with jitter. An event is therefore never skipped, and events
arrive in commit order (so per repository too); a receiver may see one again after a crash
between its answer and the cursor's move, and recognises it by its `id`.

Every process of the registry runs a `EventDelivery`, but only the holder of a target's lease
(`Leases`, named `events:<target>`) delivers to it; it renews the lease every third of its
duration and stops delivering the moment a renewal fails. A process that dies stops renewing,
and another takes the target over once the lease runs out; one that stops cleanly gives its
leases up. A target seen for the first time starts after the newest event: it receives what
happens from then on, not the history before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cargohold.domain.eventpattern import EventPattern
from cargohold.domain.webhooksigning import EVENT_ID_HEADER, signed_headers
from cargohold.ports import UNOBSERVED, Changes, Metadata, Observer, OutboxRecord

log = logging.getLogger(__name__)

#: Events read from the outbox at a time.
BATCH = 100
#: How often (seconds) an idle deliverer looks whether content was written.
_GLANCE = 0.05


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    name: str
    url: str
    secret: bytes = field(repr=False)
    #: None: every event.
    pattern: EventPattern | None = None
    timeout: float = 10.0

    @property
    def lease_name(self) -> str:
        return lease_name(self.name)

    def wants(self, document: Mapping[str, Any]) -> bool:
        return self.pattern is None or self.pattern.matches(document)


def lease_name(target: str) -> str:
    """The lease whose holder delivers to `target`."""
    return f"events:{target}"


@dataclass(frozen=True, slots=True)
class TargetState:
    """Where delivery to one target stands (`cargohold events targets`)."""

    name: str
    #: None: the target is no longer configured, and only its cursor is left.
    url: str | None
    #: The last event id it was given; None: it has not started.
    cursor: int | None
    #: The newest event id of the outbox.
    newest: int
    #: Which deliverer holds its lease now, if any.
    holder: str | None


async def target_states(
    store: Metadata, configured: Mapping[str, str], now: float
) -> list[TargetState]:
    """The state of every target `configured` (name to URL) or with a cursor, by name."""
    async with store.read() as tx:
        cursors = await tx.outbox.cursors()
        newest = await tx.outbox.last_event_id()
        states = []
        for name in sorted(set(configured) | set(cursors)):
            holder = await tx.leases.holder(lease_name(name), now)
            url = configured.get(name)
            states.append(TargetState(name, url, cursors.get(name), newest, holder))
    return states


async def forget_target(store: Metadata, name: str) -> bool:
    """Delete the cursor of a target removed from the configuration, which holds the
    outbox's pruning back; whether it had one. Configured again, it starts afresh."""
    async with store.write(changes=Changes.NOTHING) as tx:
        return await tx.outbox.delete_cursor(name)


class WebhookSender(Protocol):
    """Sends one request; the status it was answered with, or an exception when none came."""

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], time_limit: float
    ) -> int: ...


class Backoff:
    """Waits of `first` seconds doubling up to `most`, each between half and all of that."""

    def __init__(
        self, first: float, most: float, rand: Callable[[], float] = random.random
    ) -> None:
        self.first, self.most, self._rand = first, most, rand

    def delay(self, failures: int) -> float:
        base = min(self.most, self.first * 2.0 ** max(0, failures - 1))
        return base / 2 + base / 2 * self._rand()


class EventDelivery:
    """The deliverers of one process, one task per target."""

    def __init__(
        self,
        store: Metadata,
        targets: Sequence[WebhookTarget],
        sender: WebhookSender,
        clock: Callable[[], float],
        *,
        retry_first: float = 1.0,
        retry_max: float = 60.0,
        poll_interval: float = 0.5,
        lease: float = 15.0,
        observer: Observer = UNOBSERVED,
    ) -> None:
        self._store = store
        self.targets = list(targets)
        self._sender = sender
        self._clock = clock
        self._backoff = Backoff(retry_first, retry_max)
        self._poll = poll_interval
        self._lease = lease
        self._observer = observer
        self.holder = f"deliverer-{uuid.uuid4().hex[:12]}"
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._serve(target), name=f"events-{target.name}")
            for target in self.targets
        ]

    async def stop(self) -> None:
        """Stop delivering and give the leases up, so another process takes over at once."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for target in self.targets:
            try:
                async with self._store.write(changes=Changes.NOTHING) as tx:
                    await tx.leases.release(target.lease_name, self.holder)
            except Exception:
                log.warning("could not give up the lease of webhook target %s", target.name)

    # -- the lease --------------------------------------------------------------------------

    async def _acquire(self, target: WebhookTarget) -> bool:
        now = self._clock()
        async with self._store.write(changes=Changes.NOTHING) as tx:
            return await tx.leases.acquire(target.lease_name, self.holder, now, now + self._lease)

    async def _serve(self, target: WebhookTarget) -> None:
        """Deliver to `target` whenever this process holds its lease."""
        while True:
            try:
                held = await self._acquire(target)
            except Exception as exc:
                log.warning("webhook target %s: cannot take its lease: %s", target.name, exc)
                held = False
            if held:
                await self._deliver_while_held(target)
            await asyncio.sleep(self._lease / 3)

    async def _deliver_while_held(self, target: WebhookTarget) -> None:
        delivering = asyncio.create_task(self._deliver(target))
        try:
            while True:
                await asyncio.wait({delivering}, timeout=self._lease / 3)
                if delivering.done():
                    delivering.result()  # an error ends the turn; it is logged below
                    return
                try:
                    renewed = await self._acquire(target)
                except Exception as exc:
                    log.warning("webhook target %s: cannot renew its lease: %s", target.name, exc)
                    renewed = False
                if not renewed:
                    log.warning("webhook target %s: lease lost; delivery stops", target.name)
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook target %s: delivery failed; it resumes shortly", target.name)
        finally:
            delivering.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await delivering

    # -- delivery -----------------------------------------------------------------------------

    async def _start_cursor(self, target: WebhookTarget) -> int:
        async with self._store.write(changes=Changes.NOTHING) as tx:
            cursors = await tx.outbox.cursors()
            if target.name in cursors:
                return cursors[target.name]
            newest = await tx.outbox.last_event_id()
            await tx.outbox.advance_cursor(target.name, 0, newest, self._clock())
        log.info("webhook target %s starts after event %d", target.name, newest)
        return newest

    async def _deliver(self, target: WebhookTarget) -> None:
        cursor = await self._start_cursor(target)
        while True:
            async with self._store.read() as tx:
                records = await tx.outbox.events_after(cursor, BATCH)
            if not records:
                await self._idle()
                continue
            for record in records:
                document = _parse(target, record.id, record.document)
                if document is None or not target.wants(document):
                    continue
                await self._send_until_accepted(target, record, document)
                cursor = await self._advance(target, cursor, record.id)
                if cursor != record.id:
                    break
            else:
                if records[-1].id != cursor:
                    cursor = await self._advance(target, cursor, records[-1].id)

    async def _idle(self) -> None:
        """Wait for `poll_interval`, or less: until a write to content commits in any process
        (its generation moves; reading it costs no query on PostgreSQL, one primary-key read on
        SQLite), which is when pushes and deletes write their events."""
        seen = self._store.content_generation
        glance = min(_GLANCE, self._poll)
        for _ in range(max(1, round(self._poll / glance))):
            await asyncio.sleep(glance)
            if self._store.content_generation != seen:
                return

    async def _advance(self, target: WebhookTarget, cursor: int, to: int) -> int:
        """Move the cursor from `cursor` to `to`; where it is now."""
        async with self._store.write(changes=Changes.NOTHING) as tx:
            if await tx.outbox.advance_cursor(target.name, cursor, to, self._clock()):
                return to
            moved = await tx.outbox.get_cursor(target.name)
        log.warning("webhook target %s: its cursor was moved to %d elsewhere", target.name, moved)
        return moved

    async def _send_until_accepted(
        self, target: WebhookTarget, record: OutboxRecord, document: Mapping[str, Any]
    ) -> None:
        event_id, data = record.id, record.document.encode()
        failures = 0
        while True:
            headers = {
                "Content-Type": "application/json",
                EVENT_ID_HEADER: str(document.get("id", "")),
                **signed_headers(target.secret, int(self._clock()), data),
            }
            try:
                status = await self._sender.post(target.url, data, headers, target.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if 200 <= status < 300:
                    lag = self._clock() - record.created_at
                    self._observer.event_sent(target.name, delivered=True, lag=lag)
                    if failures:
                        log.info("webhook target %s: event %d delivered", target.name, event_id)
                    return
                error = f"answered {status}"
            self._observer.event_sent(target.name, delivered=False, lag=0.0)
            failures += 1
            delay = self._backoff.delay(failures)
            log.warning(
                "webhook target %s: event %d not delivered (%s); attempt %d, again in %.1f s",
                target.name,
                event_id,
                error,
                failures,
                delay,
            )
            await asyncio.sleep(delay)


def _parse(target: WebhookTarget, event_id: int, text: str) -> dict[str, Any] | None:
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        log.error(
            "webhook target %s: event %d is not a JSON object; skipped", target.name, event_id
        )
        return None
    return document
