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
- PostgreSQL: the write transaction sends `NOTIFY`, and one `LISTEN` connection per process
  receives it (`metadata.notifications`); a request waits for one round trip on that
  connection, shared with every request around it, which brings every notification committed
  before the request came.

A generation is this process's own count plus what it learnt of the others; both only grow, so
their sum changes whenever either does.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from cargohold.metadata.database import libpq_url
from cargohold.metadata.schema import generations as table
from cargohold.ports.metadata import Changes

log = logging.getLogger(__name__)

_READ = "SELECT anything, content FROM generations WHERE id = 1"


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

    def observe(self) -> Awaitable[None] | None:
        """Something to await before reading the generations in a request, when they need it
        to count every write committed before the request came (None: they do already)."""
        return None

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
        seen = self._seen  # read on every cached read: the common case without a call
        return self._anything + (seen if seen is not None else self._shared())[0]

    @property
    def content(self) -> int:
        seen = self._seen
        return self._content + (seen if seen is not None else self._shared())[1]

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


def for_url(url: str) -> Generations:
    """The generations of the database at `url` (as `database.create_engine` takes it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        from cargohold.metadata.notifications import PostgresGenerations

        return PostgresGenerations(libpq_url(url))
    if parsed.database and parsed.database != ":memory:":
        return SqliteGenerations(parsed.database)
    return Generations()
