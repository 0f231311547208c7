"""The server's record of its URL (`server.json`) and how `client_endpoint` reads it: the
recorded URL when its server runs and answers, a warning on every guess."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cargohold import serving
from cargohold.config import Config, load


def config_for(data_dir: Path, **values: object) -> Config:
    return load(overrides={"data_dir": str(data_dir), **values}, environ={})


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_running_answering_server_is_believed(tmp_path: Path, listener: int) -> None:
    record = serving.write_record(config_for(tmp_path / "data", port=listener))
    assert record.pid == os.getpid() and record.url == f"http://127.0.0.1:{listener}"
    path = tmp_path / "data" / "server.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # Another command on the same data directory, with the default configuration.
    endpoint = serving.client_endpoint(config_for(tmp_path / "data"))
    assert endpoint == serving.Endpoint(f"http://127.0.0.1:{listener}")


def test_a_record_nothing_answers_is_used_with_a_warning(tmp_path: Path) -> None:
    port = closed_port()
    serving.write_record(config_for(tmp_path, port=port))
    endpoint = serving.client_endpoint(config_for(tmp_path))
    assert endpoint.url == f"http://127.0.0.1:{port}"
    assert endpoint.warning is not None and "nothing answers" in endpoint.warning


def test_a_record_of_a_finished_process_is_used_with_a_warning(
    tmp_path: Path, listener: int
) -> None:
    config = config_for(tmp_path, port=listener)
    record = serving.write_record(config)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    path = serving.record_path(config)
    path.write_text(
        path.read_text().replace(f'"pid": {record.pid}', f'"pid": {finished.stdout.strip()}')
    )
    endpoint = serving.client_endpoint(config_for(tmp_path))
    assert endpoint.url == record.url
    assert endpoint.warning is not None and "no longer running" in endpoint.warning


def test_without_a_record_the_configured_url_is_assumed(tmp_path: Path) -> None:
    endpoint = serving.client_endpoint(config_for(tmp_path, port=5077))
    assert endpoint.url == "http://127.0.0.1:5077"
    assert endpoint.warning is not None and "cannot be known" in endpoint.warning
    public = config_for(tmp_path, public_url="https://registry.example.com/")
    assert serving.client_endpoint(public) == serving.Endpoint("https://registry.example.com")


@pytest.mark.parametrize("text", ["", "{", "[]", '{"url": "x"}', '{"url": 1, "pid": "a"}'])
def test_an_unreadable_record_is_no_record(tmp_path: Path, text: str) -> None:
    (tmp_path / "server.json").write_text(text)
    assert serving.read_record(config_for(tmp_path)) is None
    assert "cannot be known" in (serving.client_endpoint(config_for(tmp_path)).warning or "")


def test_removing_a_record_keeps_a_newer_servers(tmp_path: Path) -> None:
    old = serving.write_record(config_for(tmp_path, port=5001))
    new = serving.write_record(config_for(tmp_path, port=5002))
    serving.remove_record(config_for(tmp_path), old)
    assert serving.read_record(config_for(tmp_path)) == new
    serving.remove_record(config_for(tmp_path), new)
    assert serving.read_record(config_for(tmp_path)) is None
    assert not serving.record_path(config_for(tmp_path)).exists()
