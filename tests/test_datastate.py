"""`datastate.require_existing`: what a command that must not create state checks first."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargohold import admin, datastate
from cargohold.config import load


def test_an_initialized_registry_passes(tmp_path: Path) -> None:
    config = load(overrides={"data_dir": str(tmp_path / "data")}, environ={})
    admin.initialize(config, profile=None)
    assert datastate.require_existing(config) is None  # raises MissingState otherwise


def test_each_missing_part_is_named_and_nothing_is_created(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = load(overrides={"data_dir": str(data)}, environ={})
    with pytest.raises(datastate.MissingState, match="there is no data directory"):
        datastate.require_existing(config)
    data.mkdir()
    with pytest.raises(datastate.MissingState, match=r"holds no registry \(it has no master.key\)"):
        datastate.require_existing(config)
    with pytest.raises(datastate.MissingState, match="no cargohold metadata database in"):
        datastate.require_existing(config, master_key=False)
    assert list(data.iterdir()) == []
    (data / "metadata.db").write_bytes(b"")  # a file, but not a database of cargohold's
    with pytest.raises(datastate.MissingState, match="no cargohold metadata database"):
        datastate.require_existing(config, master_key=False)


def test_an_unreachable_database_is_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config = load(
        overrides={
            "data_dir": str(data),
            "database_url": "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
        },
        environ={},
    )
    with pytest.raises(datastate.MissingState, match="cannot open the metadata database"):
        datastate.require_existing(config, master_key=False)
