"""What every SQL role store shares: the transaction's connection and the dialect's quirks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

#: Rows per statement of a bulk insert: well under SQLite's limit on bound parameters.
BATCH_ROWS = 500


class SqlStore:
    """A role store on one transaction's connection. The same statements run on SQLite and
    PostgreSQL; conflicts use each dialect's `ON CONFLICT`, so concurrent writers resolve
    inside the database, not in Python."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._dialect = conn.dialect.name
        self._postgres = self._dialect == "postgresql"

    def _lexical(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        """Byte-wise ordering, as the OCI spec's lexical order means, whatever the DB locale."""
        return column.collate("C") if self._postgres else column

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql if self._postgres else sqlite).insert(table)

    async def _insert_many(self, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` in batches of `BATCH_ROWS` (executemany)."""
        for start in range(0, len(rows), BATCH_ROWS):
            await self.conn.execute(sa.insert(table), list(rows[start : start + BATCH_ROWS]))
