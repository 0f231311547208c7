"""The upload limits in the configuration: defaults, file, CARGOHOLD_* variables, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargohold.config import ConfigError, from_json, load, to_json


def test_defaults_are_a_day_and_a_thousand_sessions() -> None:
    config = load(environ={})
    assert (config.upload_expiry_seconds, config.max_open_uploads) == (86400, 1000)


def test_set_in_the_file_and_overridden_by_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "cargohold.toml"
    file.write_text("upload_expiry_seconds = 600\nmax_open_uploads = 50\n")
    config = load(config_file=str(file), environ={"CARGOHOLD_UPLOAD_EXPIRY_SECONDS": "120"})
    assert (config.upload_expiry_seconds, config.max_open_uploads) == (120, 50)
    config = load(environ={"CARGOHOLD_MAX_OPEN_UPLOADS": "7"})
    assert config.max_open_uploads == 7
    assert from_json(to_json(config)) == config


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CARGOHOLD_UPLOAD_EXPIRY_SECONDS": "0"}, "upload_expiry_seconds must be at least 1"),
        ({"CARGOHOLD_UPLOAD_EXPIRY_SECONDS": "a day"}, "must be an integer"),
        ({"CARGOHOLD_MAX_OPEN_UPLOADS": "-1"}, "max_open_uploads must be at least 1"),
        ({"CARGOHOLD_MAX_OPEN_UPLOADS": "1.5"}, "must be an integer"),
    ],
)
def test_bad_values_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(environ=environ)
