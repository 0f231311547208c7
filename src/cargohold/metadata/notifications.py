"""PostgreSQL's generations: `NOTIFY` in each write, one `LISTEN` connection per process.

PostgreSQL signals every listening backend when a transaction that notified commits, before
the writer hears that it committed; a listening backend sends what it was signalled before it
answers its next query (pending notifications go out before ReadyForQuery). So a round trip on
the listening connection that begins after a write committed brings that write's notification
with it. That round trip is what makes "the very next request" exact: delivery alone is quick,
but on a busy machine it lags a commit by milliseconds, longer than a client takes to send its
next request to another process.

`observe()` is that round trip, shared. A request's first observation notes when it began; the
request joins a round trip under way if it was sent after that, else the next one, and once one
has been answered the rest of the request reuses it. Between requests the connection is read
whenever it becomes readable, so work outside requests sees writes within milliseconds too.
While the connection is down nothing cached is trusted: every read of a generation moves it
on, and reconnecting moves both on once more for whatever was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable
from contextvars import ContextVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cargohold.metadata.generations import Generations
from cargohold.ports.metadata import Changes

log = logging.getLogger(__name__)

#: The notification channel of the schema the URL's connections use (registries may share a
#: database, each in a schema of its own); the payload is the `Changes` value of the write.
CHANNEL = "'cargohold_' || md5(coalesce(current_schema(), ''))"
_NOTIFY = sa.text(f"SELECT pg_notify({CHANNEL}, :changes)")

_RETRY_FIRST, _RETRY_MOST = 0.05, 2.0

#: When the task (a request) running now first observed the generations.
_OBSERVING_SINCE: ContextVar[float] = ContextVar("cargohold_observing_since")

Listener = psycopg.AsyncConnection[tuple[object, ...]]


class _RoundTrip:
    """One round trip on the listening connection: answered when `done` is."""

    __slots__ = ("done", "sent_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.sent_at = math.inf  # until it is sent

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class PostgresGenerations(Generations):
    """Moved on by the notifications one `LISTEN` connection receives (see the module)."""

    def __init__(self, conninfo: str) -> None:
        super().__init__()
        self._conninfo = conninfo
        #: Whether the connection listens (and the generations are trusted).
        self.live = False
        #: The PostgreSQL backend process of the listening connection.
        self.backend_pid: int | None = None
        self._task: asyncio.Task[None] | None = None
        #: Asked for and not sent yet; the one sent and not answered yet.
        self._next: _RoundTrip | None = None
        self._current: _RoundTrip | None = None
        #: When the last answered round trip was sent.
        self._answered_since = -math.inf
        #: What the task waits on while nobody asks and nothing arrives.
        self._wakeup: asyncio.Future[None] | None = None

    @property
    def anything(self) -> int:
        if not self.live:
            self.wrote(Changes.ANYTHING)
        return self._anything

    @property
    def content(self) -> int:
        if not self.live:
            self.wrote(Changes.ANYTHING)
        return self._content

    def observe(self) -> Awaitable[None] | None:
        if not self.live:
            return None
        since = _OBSERVING_SINCE.get(None)
        if since is None:
            since = time.monotonic()
            _OBSERVING_SINCE.set(since)
        if self._answered_since >= since:
            return None
        current = self._current
        if current is not None and current.sent_at >= since:
            return asyncio.shield(current.done)
        if self._next is None:
            self._next = _RoundTrip(asyncio.get_running_loop())
            if self._wakeup is not None and not self._wakeup.done():
                self._wakeup.set_result(None)
        return asyncio.shield(self._next.done)

    async def record(self, conn: AsyncConnection, changes: Changes) -> None:
        if changes is not Changes.NOTHING:
            await conn.execute(_NOTIFY, {"changes": changes.value})

    async def start(self) -> None:
        """Listen before returning (raising if the database cannot be reached), then follow
        in a task that reconnects whenever the connection is lost."""
        if self._task is None:
            listener = await self._listen()
            self._task = asyncio.create_task(self._follow(listener), name="generations")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.live = False
        self._release()

    async def _listen(self) -> Listener:
        listener: Listener = await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name="cargohold generations",
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        try:
            listener.add_notify_handler(self._notified)
            cursor = await listener.execute(f"SELECT {CHANNEL}")
            (channel,) = await cursor.fetchone() or ("",)
            await listener.execute(f'LISTEN "{channel}"')  # md5 hex: nothing to quote
        except BaseException:
            await listener.close()
            raise
        self.backend_pid = listener.info.backend_pid
        # Whatever was written before now is not known to have been seen.
        self.wrote(Changes.ANYTHING)
        self.live = True
        return listener

    def _notified(self, notification: psycopg.Notify) -> None:
        self.wrote(
            Changes.CONTENT if notification.payload == Changes.CONTENT.value else Changes.ANYTHING
        )

    async def _follow(self, listener: Listener | None) -> None:
        delay = _RETRY_FIRST
        while True:
            try:
                if listener is None:
                    listener = await self._listen()
                    delay = _RETRY_FIRST
                await self._serve(listener)
            except (psycopg.Error, OSError) as exc:
                log.warning("lost the database's change notifications (%s); reconnecting", exc)
            finally:
                self.live = False
                self._release()
                if listener is not None:
                    with contextlib.suppress(psycopg.Error, OSError):
                        await listener.close()
                    listener = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MOST)

    async def _serve(self, listener: Listener) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._next is None:
                await self._readable_or_asked(loop, listener.fileno())
            trip, self._next = self._next or _RoundTrip(loop), None
            trip.sent_at = time.monotonic()
            self._current = trip
            await listener.execute("SELECT 1")  # brings every notification signalled before it
            self._answered_since = trip.sent_at
            self._current = None
            trip.finish()

    async def _readable_or_asked(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        wakeup: asyncio.Future[None] = loop.create_future()
        self._wakeup = wakeup
        loop.add_reader(fd, _resolve, wakeup)
        try:
            await wakeup
        finally:
            loop.remove_reader(fd)
            self._wakeup = None

    def _release(self) -> None:
        """Let every waiting request go on; with the connection down it trusts no cache."""
        for trip in (self._current, self._next):
            if trip is not None:
                trip.finish()
        self._current = self._next = None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
