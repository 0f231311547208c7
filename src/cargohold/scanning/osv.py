"""Reading OSV advisories from disk: a directory of `*.json` records (any depth), a zip of
them as osv.dev publishes per ecosystem (`<ecosystem>/all.zip`), or a directory of such zips.

Records are yielded one at a time, so memory holds one record, never the whole database.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cargohold.domain import jsondoc


class OsvSourceError(Exception):
    """A path that is neither a directory nor a zip of OSV records."""


@dataclass
class ReadReport:
    """Files that could not be read as an OSV record, by name, with the reason."""

    skipped: list[tuple[str, str]]


def _record(name: str, data: bytes, report: ReadReport) -> dict[str, Any] | None:
    try:
        document = jsondoc.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        report.skipped.append((name, f"not JSON: {exc}"))
        return None
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        report.skipped.append((name, "not an OSV record (no id)"))
        return None
    return document


def _zip_members(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return [i.filename for i in archive.infolist() if i.filename.endswith(".json")]


def _sources(path: Path) -> list[tuple[Path, str | None]]:
    """(file, member of a zip or None) for every record under `path`."""
    if path.is_file():
        if not zipfile.is_zipfile(path):
            return [(path, None)]  # one record, or a file counted as invalid
        return [(path, member) for member in _zip_members(path)]
    if not path.is_dir():
        raise OsvSourceError(f"{path} does not exist")
    found: list[tuple[Path, str | None]] = []
    for item in sorted(path.rglob("*")):
        if item.suffix == ".json" and item.is_file():
            found.append((item, None))
        elif item.suffix == ".zip" and item.is_file() and zipfile.is_zipfile(item):
            found.extend((item, member) for member in _zip_members(item))
    return found


class OsvSource:
    """The records under one path, counted before they are read (for a progress bar)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sources = _sources(path)
        self.report = ReadReport([])

    def __len__(self) -> int:
        return len(self._sources)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        archive: zipfile.ZipFile | None = None
        archive_path: Path | None = None
        try:
            for file, member in self._sources:
                if member is None:
                    record = _record(str(file), file.read_bytes(), self.report)
                else:
                    if archive_path != file:
                        if archive is not None:
                            archive.close()
                        archive, archive_path = zipfile.ZipFile(file), file
                    assert archive is not None
                    record = _record(f"{file}!{member}", archive.read(member), self.report)
                if record is not None:
                    yield record
        finally:
            if archive is not None:
                archive.close()
