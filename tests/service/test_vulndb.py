"""The vulnerability database through the service layer on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from cargohold.scanning.osv import OsvSource
from support.scan_images import OSV_FIXTURES
from support.scanner import Scanner

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]


async def test_reimport_is_incremental(scanner: Scanner) -> None:
    report = await scanner.vulndb.import_records(OsvSource(OSV_FIXTURES))
    assert (report.added, report.updated, report.changed) == (0, 0, 0)
    assert report.unchanged == len(OsvSource(OSV_FIXTURES))
