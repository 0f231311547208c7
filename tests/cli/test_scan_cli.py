"""`cargohold vulndb import` and `cargohold sbom export` from the command line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cargohold.cli import main

OSV = Path(__file__).parent.parent / "fixtures" / "osv"


@pytest.fixture
def data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    path = str(tmp_path / "data")
    assert main(["admin", "init", "--no-profile", "--data-dir", path]) == 0
    capsys.readouterr()
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_counts_files_that_are_not_osv_records_as_invalid(
    capsys: pytest.CaptureFixture[str], data_dir: str, tmp_path: Path
) -> None:
    source = tmp_path / "osv"
    shutil.copytree(OSV / "Debian", source)
    records = len(list(source.rglob("*.json")))
    (source / "notes.json").write_text("these are not OSV records\n")
    (source / "other.json").write_text('{"schema_version": "1.6.0"}\n')
    code, out, err = run(capsys, "vulndb", "import", str(source), "--data-dir", data_dir)
    assert code == 0, err
    assert f"imported {records} new and 0 changed advisories; 0 unchanged, 2 invalid" in out
    assert "notes.json: not JSON" in err and "other.json: not an OSV record" in err


def test_a_single_file_that_is_not_a_record_is_invalid(
    capsys: pytest.CaptureFixture[str], data_dir: str, tmp_path: Path
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# not a record\n")
    code, out, _ = run(capsys, "vulndb", "import", str(readme), "--data-dir", data_dir)
    assert code == 0 and "0 new" in out and "1 invalid" in out


@pytest.mark.parametrize("kind", ["empty directory", "directory without records"])
def test_an_empty_source_says_so(
    capsys: pytest.CaptureFixture[str], data_dir: str, tmp_path: Path, kind: str
) -> None:
    source = tmp_path / "osv"
    source.mkdir()
    if kind == "directory without records":
        (source / "README.txt").write_text("download the zips here\n")
    code, out, err = run(capsys, "vulndb", "import", str(source), "--data-dir", data_dir)
    assert code == 1 and out == ""
    assert f"{source} holds no OSV records" in err and "all.zip" in err


def test_import_into_no_registry_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "none"
    code, _, err = run(capsys, "vulndb", "import", str(OSV / "Debian"), "--data-dir", str(data_dir))
    assert code == 1 and "there is no data directory" in err
    assert not data_dir.exists()


def test_sbom_export_of_another_account(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    code, _, err = run(
        capsys, "sbom", "export", "app", "1.0", "--account", "210987654321", "--data-dir", data_dir
    )
    assert code == 1
    assert "registry with id '210987654321'" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["sbom", "export", "app", "1.0", "--account", "12", "--data-dir", data_dir])
    assert exit_info.value.code == 2
    assert "twelve digits" in capsys.readouterr().err
