"""Generations: how every process of one registry learns at once that another one wrote.

`service.readcache` keeps what it read while the store's two generations stand still: `content`
moves with every committed write that changes what repositories hold, `anything` with every
write that changes anything a cache keeps (and `content` with it). A write moves them in its own
process at once; every other process of the same database learns of it through what its
database offers:

- SQLite: the write transaction bumps the one row of the `generations` table, and each process
  reads that row with one query on a connection of its own, on the event loop (a primary-key
  read of a WAL database takes microseconds; no thread, no pool). The row is read at most once
  per turn of the event loop: a request that arrives after a write committed is read from its
  socket in a later turn than any read of the row made before that commit, so it never reuses
  one.
- PostgreSQL: the write transaction sends `NOTIFY` on `CHANNEL`, which the database delivers
  at commit to one `LISTEN` connection per process; its task moves the generations on. While
  that connection is down nothing cached is trusted: every read of a generation moves it on, and
  reconnecting moves both on once more for whatever was missed.

A generation is this process's own count plus what it learnt of the others; both only grow, so
their sum changes whenever either does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from cargohold.metadata.schema import generations as table
from cargohold.ports.metadata import Changes

log = logging.getLogger(__name__)

#: The PostgreSQL notification channel; the payload is the `Changes` value of the write.
CHANNEL = "cargohold_changes"

_READ = "SELECT anything, content FROM generations WHERE id = 1"
_RETRY_FIRST, _RETRY_MOST = 0.05, 2.0


class Generations:
    """This process's own writes only: a database no other process shares (or none at all)."""

    def __init__(self) -> None:
        self._anything = 0
        self._content = 0

    @property
    def anything(self) -> int:
        return self._anything

    @property
    def content(self) -> int:
        return self._content

    def wrote(self, changes: Changes) -> None:
        """A write transaction of this process that may have changed `changes` has ended."""
        if changes is not Changes.NOTHING:
            self._content += 1
        if changes is Changes.ANYTHING:
            self._anything += 1

    async def record(self, conn: AsyncConnection, changes: Changes) -> None:
        """Tell the other processes, inside the write transaction on `conn`, what it changes."""

    async def start(self) -> None:
        """Start following the other processes' writes."""

    async def close(self) -> None:
        """Stop following them."""


class SqliteGenerations(Generations):
    """The `generations` row of a SQLite database, read once per turn of the event loop."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path
        self._connection: sqlite3.Connection | None = None
        #: (anything, content) of the row as read in this turn of the event loop.
        self._seen: tuple[int, int] | None = None
        self._last: tuple[int, int] = (0, 0)

    @property
    def anything(self) -> int:
        return self._anything + self._shared()[0]

    @property
    def content(self) -> int:
        return self._content + self._shared()[1]

    async def record(self, conn: AsyncConnection, changes: Changes) -> None:
        if changes is Changes.NOTHING:
            return
        moved = 1 if changes is Changes.ANYTHING else 0
        await conn.execute(
            table.update()
            .where(table.c.id == 1)
            .values(content=table.c.content + 1, anything=table.c.anything + moved)
        )

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _shared(self) -> tuple[int, int]:
        if self._seen is not None:
            return self._seen
        try:
            if self._connection is None:
                self._connection = _reader(self._path)
            ((anything, content),) = self._connection.execute(_READ).fetchall()
        except (sqlite3.Error, ValueError):
            log.warning("cannot read the generations row; nothing cached is trusted")
            # Moving this process's own counts on makes every read differ from the last one.
            self._anything += 1
            self._content += 1
            return self._last
        self._last = (int(anything), int(content))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._last
        self._seen = self._last
        loop.call_soon(self._forget)
        return self._last

    def _forget(self) -> None:
        self._seen = None


def _reader(path: str) -> sqlite3.Connection:
    # Autocommit: each read is its own transaction and sees every write committed before it.
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


class PostgresGenerations(Generations):
    """Moved on by `NOTIFY`s on `CHANNEL`, received by one `LISTEN` connection and its task."""

    def __init__(self, conninfo: str) -> None:
        super().__init__()
        self._conninfo = conninfo
        self._live = False
        self._task: asyncio.Task[None] | None = None

    @property
    def anything(self) -> int:
        if not self._live:
            self.wrote(Changes.ANYTHING)
        return self._anything

    @property
    def content(self) -> int:
        if not self._live:
            self.wrote(Changes.ANYTHING)
        return self._content

    async def record(self, conn: AsyncConnection, changes: Changes) -> None:
        if changes is not Changes.NOTHING:
            await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, changes.value)))

    async def start(self) -> None:
        """Listen before returning (raising if the database cannot be reached), then follow
        the notifications in a task that reconnects whenever the connection is lost."""
        if self._task is None:
            connection = await self._listen()
            self._task = asyncio.create_task(self._follow(connection), name="generations")

    async def close(self) -> None:
        task, self._task = self._task, None
        self._live = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        connection = await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name="cargohold generations",
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        try:
            await connection.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            await connection.close()
            raise
        # Whatever was written before now is not known to have been seen.
        self.wrote(Changes.ANYTHING)
        self._live = True
        return connection

    async def _follow(self, connection: psycopg.AsyncConnection[tuple[object, ...]] | None) -> None:
        delay = _RETRY_FIRST
        while True:
            try:
                if connection is None:
                    connection = await self._listen()
                    delay = _RETRY_FIRST
                async for notification in connection.notifies():
                    self.wrote(
                        Changes.CONTENT
                        if notification.payload == Changes.CONTENT.value
                        else Changes.ANYTHING
                    )
            except (psycopg.Error, OSError) as exc:
                log.warning("lost the database's change notifications (%s); reconnecting", exc)
            self._live = False
            if connection is not None:
                with contextlib.suppress(psycopg.Error, OSError):
                    await connection.close()
                connection = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MOST)


def for_url(url: str) -> Generations:
    """The generations of the database at `url` (as `database.create_engine` takes it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresGenerations(
            parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        )
    if parsed.database and parsed.database != ":memory:":
        return SqliteGenerations(parsed.database)
    return Generations()
