"""Reading OSV records: a directory, osv.dev's zip, a directory of zips, and what is skipped."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from cargohold.scanning.osv import OsvSource, OsvSourceError
from support.scan_images import OSV_FIXTURES

FIXTURE_IDS = {p.stem for p in OSV_FIXTURES.rglob("*.json")}


def test_a_directory_of_records() -> None:
    source = OsvSource(OSV_FIXTURES)
    assert len(source) == len(FIXTURE_IDS) == 12
    assert {r["id"] for r in source} == FIXTURE_IDS


def test_an_osv_dev_zip_and_a_directory_of_zips(tmp_path: Path) -> None:
    archive = tmp_path / "PyPI" / "all.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as out:
        for path in (OSV_FIXTURES / "PyPI").glob("*.json"):
            out.write(path, path.name)
    assert {r["id"] for r in OsvSource(archive)} == {
        p.stem for p in (OSV_FIXTURES / "PyPI").glob("*.json")
    }
    assert len(list(OsvSource(tmp_path))) == 3


def test_files_that_are_not_records_are_skipped_and_reported(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(json.dumps({"id": "X-1", "modified": "2024-01-01"}))
    (tmp_path / "junk.json").write_text("not json")
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "deep.json").write_text('{"id": "X-2", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    source = OsvSource(tmp_path)
    assert [r["id"] for r in source] == ["X-1"]
    assert sorted(Path(name).name for name, _ in source.report.skipped) == [
        "deep.json",
        "junk.json",
        "list.json",
    ]


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OsvSourceError):
        OsvSource(tmp_path / "missing")
    # A file that is not a record is read as one, and reported as skipped (invalid).
    (tmp_path / "notes.txt").write_text("hello")
    source = OsvSource(tmp_path / "notes.txt")
    assert len(source) == 1 and list(source) == []
    assert [name for name, _ in source.report.skipped] == [str(tmp_path / "notes.txt")]
