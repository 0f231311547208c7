"""Configuration: defaults, file, environment and flags in rising precedence; typos are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargohold.config import ConfigError, from_json, load, to_json


def test_defaults() -> None:
    config = load(environ={})
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 5000, 1)
    assert config.data_dir == "./cargohold-data"
    assert config.resolved_database_url.startswith("sqlite:///")
    assert config.create_on_push is False
    assert config.events_retention_seconds == 7 * 86400
    assert load(environ={"CARGOHOLD_EVENTS_RETENTION_SECONDS": "60"}).events_retention_seconds == 60


def test_file_environment_and_flags_in_order(tmp_path: Path) -> None:
    file = tmp_path / "cargohold.toml"
    file.write_text(
        'port = 6000\nregion = "eu-west-1"\nworkers = 2\n[storage]\ndriver = "filesystem"\n'
    )
    config = load(
        config_file=str(file),
        environ={"CARGOHOLD_PORT": "7000", "CARGOHOLD_ACCOUNT_ID": "210987654321"},
        overrides={"port": 8000},
    )
    assert config.port == 8000
    assert config.region == "eu-west-1"
    assert config.account_id == "210987654321"
    assert config.workers == 2


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CARGOHOLD_PROT": "1"}, "unknown key 'prot'"),
        ({"CARGOHOLD_STORAGE_DRIVER": "floppy"}, "unknown storage driver 'floppy'"),
        ({"CARGOHOLD_WORKERS": "0"}, "workers must be between 1 and 64"),
        ({"CARGOHOLD_PORT": "x"}, "port must be an integer"),
        ({"CARGOHOLD_ACCOUNT_ID": "12"}, "account_id must be 12 digits"),
        ({"CARGOHOLD_EVENTS_RETENTION_SECONDS": "0"}, "events_retention_seconds must be more"),
    ],
)
def test_mistakes_are_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(environ=environ)


def test_unknown_key_in_a_file(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'prot'"):
        load(config_file=str(file), environ={})


def test_workers_receive_the_resolved_configuration() -> None:
    config = load(environ={"CARGOHOLD_PORT": "7001"}, overrides={"workers": 3})
    assert from_json(to_json(config)) == config


def test_body_limits_have_defaults_and_take_numbers(tmp_path: Path) -> None:
    defaults = load(environ={})
    assert (
        defaults.body_idle_timeout_seconds,
        defaults.body_min_bytes_per_second,
        defaults.body_rate_grace_seconds,
    ) == (60.0, 1024.0, 10.0)
    file = tmp_path / "cargohold.toml"
    file.write_text("body_idle_timeout_seconds = 5\nbody_rate_grace_seconds = 0.5\n")
    config = load(config_file=str(file), environ={"CARGOHOLD_BODY_MIN_BYTES_PER_SECOND": "0"})
    assert (
        config.body_idle_timeout_seconds,
        config.body_min_bytes_per_second,
        config.body_rate_grace_seconds,
    ) == (5.0, 0.0, 0.5)
    assert from_json(to_json(config)) == config


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CARGOHOLD_BODY_IDLE_TIMEOUT_SECONDS": "0"}, "body_idle_timeout_seconds must be"),
        ({"CARGOHOLD_BODY_IDLE_TIMEOUT_SECONDS": "soon"}, "must be a number"),
        ({"CARGOHOLD_BODY_IDLE_TIMEOUT_SECONDS": "nan"}, "must be a finite number"),
        ({"CARGOHOLD_BODY_MIN_BYTES_PER_SECOND": "-1"}, "must not be negative"),
        ({"CARGOHOLD_BODY_RATE_GRACE_SECONDS": "-5"}, "must not be negative"),
    ],
)
def test_body_limit_mistakes_are_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(environ=environ)


def test_a_boolean_is_no_body_limit(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("body_idle_timeout_seconds = true\n")
    with pytest.raises(ConfigError, match="must be a number"):
        load(config_file=str(file), environ={})


def test_the_s3_storage_from_a_file_and_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text(
        '[storage]\ndriver = "s3"\nbucket = "blobs"\nprefix = "registry/"\n'
        'endpoint_url = "http://127.0.0.1:8333"\npath_style = true\nredirect = false\n'
    )
    config = load(
        config_file=str(file),
        environ={
            "CARGOHOLD_STORAGE_ACCESS_KEY_ID": "store-key",
            "CARGOHOLD_STORAGE_SECRET_ACCESS_KEY": "store-secret",
            "CARGOHOLD_STORAGE_REGION": "eu-west-1",
            # What clients of the registry use: never the store's.
            "AWS_ACCESS_KEY_ID": "client-key",
        },
    )
    storage = config.storage
    assert (storage.driver, storage.bucket, storage.prefix) == ("s3", "blobs", "registry/")
    assert (storage.path_style, storage.redirect, storage.region) == (True, False, "eu-west-1")
    assert (storage.access_key_id, storage.secret_access_key) == ("store-key", "store-secret")
    assert "store-secret" not in repr(config)
    assert from_json(to_json(config)) == config


def test_redirect_is_the_default() -> None:
    config = load(environ={"CARGOHOLD_STORAGE_DRIVER": "s3", "CARGOHOLD_STORAGE_BUCKET": "b-1"})
    assert config.storage.redirect is True and config.storage.access_key_id is None


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "storage.bucket must name an S3 bucket"),
        ({"CARGOHOLD_STORAGE_BUCKET": "Bad_Bucket"}, "storage.bucket must name"),
        (
            {"CARGOHOLD_STORAGE_BUCKET": "ok-bucket", "CARGOHOLD_STORAGE_PATH_STYLE": "maybe"},
            "storage.path_style must be a boolean",
        ),
        (
            {"CARGOHOLD_STORAGE_BUCKET": "ok-bucket", "CARGOHOLD_STORAGE_ENDPOINT_URL": "ftp://x"},
            "is not an http",
        ),
        (
            {"CARGOHOLD_STORAGE_BUCKET": "ok-bucket", "CARGOHOLD_STORAGE_ACCESS_KEY_ID": "k"},
            "go together",
        ),
        (
            {"CARGOHOLD_STORAGE_BUCKET": "ok-bucket", "CARGOHOLD_STORAGE_PREFIX": "a/../b"},
            "is not a key prefix",
        ),
    ],
)
def test_s3_mistakes_are_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(environ={"CARGOHOLD_STORAGE_DRIVER": "s3", **environ})


def test_tls_makes_the_public_url_https() -> None:
    config = load(environ={"CARGOHOLD_TLS_CERT": "/c.pem", "CARGOHOLD_TLS_KEY": "/k.pem"})
    assert config.resolved_public_url == "https://127.0.0.1:5000"
    assert load(environ={}).resolved_public_url == "http://127.0.0.1:5000"
    assert from_json(to_json(config)).tls_cert == "/c.pem"


def test_tls_cert_without_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="tls_cert and tls_key must be set together"):
        load(environ={"CARGOHOLD_TLS_CERT": "/c.pem"})


def test_metrics_need_a_port_of_their_own() -> None:
    assert load(environ={}).metrics_port == 0
    assert load(environ={"CARGOHOLD_METRICS_PORT": "9100"}).metrics_port == 9100
    with pytest.raises(ConfigError, match="metrics_port 5000"):
        load(environ={"CARGOHOLD_METRICS_PORT": "5000"})
    with pytest.raises(ConfigError, match="log_format must be text or json"):
        load(environ={"CARGOHOLD_LOG_FORMAT": "xml"})
