"""Engines and transactions for SQLite and PostgreSQL, and schema migration with Alembic.

One URL configures both: `sqlite:///path` or `postgresql://user@host/db`. The async engine
serves requests; Alembic runs on a short-lived sync engine at start-up.

SQLite allows one writer: write transactions begin with `BEGIN IMMEDIATE` so two writers queue
on the busy timeout instead of failing when a read lock is upgraded, and WAL lets readers go on
while a write is in progress. The database file is created 0600 before SQLite opens it, and
SQLite gives its `-wal` and `-shm` files the database file's mode.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cargohold.privatefiles import create_private_file, make_private_dirs, restrict

_MIGRATIONS = Path(__file__).with_name("migrations")


def _driver_url(url: str, *, asynchronous: bool) -> sa.URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")


def libpq_url(url: str) -> str:
    """A PostgreSQL URL as libpq (psycopg's own connections) takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _private_sqlite_file(url: sa.URL) -> None:
    """Create the SQLite database file of `url` 0600 (in a 0700 directory) if it does not exist;
    an existing one, and its journal files, lose any group or other access."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    make_private_dirs(path.parent)
    try:
        os.close(create_private_file(path))
    except FileExistsError:
        for suffix in ("", "-wal", "-shm"):
            restrict(path.with_name(path.name + suffix))


def _sqlite_events(sync_engine: sa.Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get("cargohold_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_engine(url: str) -> AsyncEngine:
    driver_url = _driver_url(url, asynchronous=True)
    if is_sqlite(url):
        _private_sqlite_file(driver_url)
        engine = create_async_engine(driver_url, pool_size=8, max_overflow=8)
        _sqlite_events(engine.sync_engine)
    else:
        engine = create_async_engine(driver_url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    return engine


@asynccontextmanager
async def transaction(engine: AsyncEngine, *, write: bool) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        if write:
            conn = await conn.execution_options(cargohold_write=True)
        async with conn.begin():
            yield conn


def initialized(url: str) -> bool:
    """Whether the database of `url` exists and holds cargohold's schema (at any revision).
    Creates nothing: a SQLite file that does not exist is not opened."""
    sync_url = _driver_url(url, asynchronous=False)
    if sync_url.get_backend_name() == "sqlite":
        database = sync_url.database or ""
        on_disk = database not in ("", ":memory:") and not database.startswith("file:")
        if on_disk and not Path(database).is_file():
            return False
    engine = sa.create_engine(sync_url)
    try:
        with engine.connect() as connection:
            return sa.inspect(connection).has_table("alembic_version")
    finally:
        engine.dispose()


def upgrade(url: str) -> None:
    """Bring the database to the newest schema revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    sync_url = _driver_url(url, asynchronous=False)
    if sync_url.get_backend_name() == "sqlite":
        _private_sqlite_file(sync_url)
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    engine = sa.create_engine(sync_url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
