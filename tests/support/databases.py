"""Live servers on either database: a PostgreSQL schema of their own, and the configuration file
that points a `cargohold serve` at it (or at SQLite, its default), with any other keys."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DATABASES = ["sqlite", "postgresql"]


@contextlib.contextmanager
def database_for_server(database: str) -> Iterator[str | None]:
    """None for SQLite (the server's default), else the URL of a fresh PostgreSQL schema that
    is dropped afterwards."""
    if database == "sqlite":
        yield None
        return
    schema = f"t_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}", pytrace=False)
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def config_file(path: Path, database_url: str | None, **values: object) -> Path:
    """A TOML configuration with `values` (and the database, when not SQLite)."""
    if database_url is not None:
        values["database_url"] = database_url
    path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()))
    return path
