"""`cargohold serve` as a real subprocess: whatever umask it starts with, everything it creates
in its data directory is 0600 (directories 0700); and it records the URL it serves on, so
`cargohold admin credentials` names that server, not the configuration's default port."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig

from support.server import free_port
from support.waiting import wait_until

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-60:])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment without AWS or cargohold settings; AWS files in the test's directory."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CARGOHOLD_"))}
    clean["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "aws" / "credentials")
    clean["AWS_CONFIG_FILE"] = str(tmp_path / "aws" / "config")
    clean["PYTHONUNBUFFERED"] = "1"
    return clean


@contextlib.contextmanager
def serving(
    env: dict[str, str], data_dir: Path, *args: str, umask: int = 0o022
) -> Iterator[Server]:
    """`cargohold serve --port <free port> --data-dir data_dir *args`, started with `umask`,
    answering on /v2/; stopped (SIGTERM, else killed) when the block ends."""
    port = free_port()
    log = data_dir.parent / f"serve-{port}.log"
    command = [sys.executable, "-m", "cargohold", "serve", "--port", str(port)]
    command += ["--data-dir", str(data_dir), *args]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=data_dir.parent,
            umask=umask,
            start_new_session=True,
        )
    server = Server(process, data_dir, port, log)
    try:

        def answering() -> bool:
            assert process.poll() is None, f"serve exited\n{server.log_tail()}"
            try:
                httpx.get(f"{server.url}/v2/", timeout=1.0)
            except httpx.TransportError:
                return False
            return True

        wait_until(answering, timeout=START_TIMEOUT, message=server.log_tail)
        yield server
    finally:
        stop(server)


def stop(server: Server, sig: int = signal.SIGTERM) -> int:
    process = server.process
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)
            raise AssertionError(f"serve ignored signal {sig}\n{server.log_tail()}") from None
    return process.returncode


def credentials(env: dict[str, str], data_dir: Path) -> tuple[dict[str, str], str]:
    """`cargohold admin credentials`: its exported variables, and its standard error."""
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", "admin", "credentials", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in result.stdout.splitlines()
        if line.startswith("export ")
    )
    return exports, result.stderr


def ecr(exports: dict[str, str]) -> Any:
    return boto3.client(
        "ecr",
        endpoint_url=exports["AWS_ENDPOINT_URL_ECR"],
        region_name=exports["AWS_DEFAULT_REGION"],
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def push_blobs(server: Server, exports: dict[str, str]) -> None:
    """A monolithic blob, a chunked upload completed, and a chunked upload left open."""
    client = ecr(exports)
    client.create_repository(repositoryName="app")
    token = client.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    auth = httpx.BasicAuth(*base64.b64decode(token).decode().split(":", 1))
    with httpx.Client(base_url=server.url, auth=auth, timeout=30.0) as http:
        whole = b"a monolithic layer"
        response = http.post(
            "/v2/app/blobs/uploads/", params={"digest": digest(whole)}, content=whole
        )
        assert response.status_code == 201, response.text

        chunks = [b"first chunk, ", b"second chunk"]
        location = http.post("/v2/app/blobs/uploads/").headers["Location"]
        offset = 0
        for chunk in chunks:
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            }
            response = http.patch(location, content=chunk, headers=headers)
            assert response.status_code == 202, response.text
            location, offset = response.headers["Location"], offset + len(chunk)
        response = http.put(location, params={"digest": digest(b"".join(chunks))})
        assert response.status_code == 201, response.text
        assert http.head(f"/v2/app/blobs/{digest(b''.join(chunks))}").status_code == 200

        location = http.post("/v2/app/blobs/uploads/").headers["Location"]
        response = http.patch(location, content=b"left open", headers={"Content-Range": "0-8"})
        assert response.status_code == 202, response.text


def modes(top: Path) -> dict[str, int]:
    """Mode of `top` (as ".") and of every directory and file under it."""
    found = {".": stat.S_IMODE(top.lstat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            found[path.relative_to(top).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


# -- a private data directory -------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022], ids=["umask-000", "umask-022"])
def test_everything_serve_creates_is_private(
    tmp_path: Path, env: dict[str, str], umask: int
) -> None:
    data_dir = tmp_path / "data"  # serve creates it
    with serving(env, data_dir, umask=umask) as server:
        exports, _ = credentials(env, data_dir)
        push_blobs(server, exports)
        found = modes(data_dir)
        wrong = {
            name: oct(mode)
            for name, mode in found.items()
            if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
        }
        assert not wrong, f"not private: {wrong}"
    names = set(found)
    assert {"metadata.db", "metadata.db-wal", "metadata.db-shm", "master.key"} <= names
    assert {"storage/_uploads", "storage/_tmp", "server.json"} <= names
    blobs = [n for n in names if n.startswith("storage/blobs/") and (data_dir / n).is_file()]
    staged = [name for name in names if name.startswith("storage/_uploads/")]
    assert len(blobs) == 2 and len(staged) == 1, sorted(names)


# -- the recorded URL ---------------------------------------------------------------------


def aws_cli() -> str:
    return shutil.which("aws") or str(Path(sys.executable).with_name("aws"))


def test_credentials_name_the_port_the_server_runs_on(tmp_path: Path, env: dict[str, str]) -> None:
    data_dir = tmp_path / "data"
    with serving(env, data_dir) as server:
        assert server.port != 5000
        exports, err = credentials(env, data_dir)
        for service in ("ECR", "STS", "IAM"):
            assert exports[f"AWS_ENDPOINT_URL_{service}"] == server.url
        assert err == ""
        record = json.loads((data_dir / "server.json").read_text())
        assert (record["url"], record["pid"]) == (server.url, server.process.pid)

        ecr(exports).create_repository(repositoryName="web")
        script = (
            f'eval "$({sys.executable} -m cargohold admin credentials --data-dir {data_dir})" '
            f"&& {aws_cli()} ecr describe-repositories --output json"
        )
        result = subprocess.run(
            ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        repositories = json.loads(result.stdout)["repositories"]
        assert [r["repositoryName"] for r in repositories] == ["web"]
        assert repositories[0]["repositoryUri"].startswith(f"127.0.0.1:{server.port}/")

        code = stop(server)
    assert code == 0
    # A clean stop removes the record: the command says it cannot know, and what it assumes.
    assert not (data_dir / "server.json").exists()
    exports, err = credentials(env, data_dir)
    assert exports["AWS_ENDPOINT_URL_ECR"] == "http://127.0.0.1:5000"
    assert "cannot be known" in err and "assuming http://127.0.0.1:5000" in err


def test_a_server_that_died_is_reported(tmp_path: Path, env: dict[str, str]) -> None:
    data_dir = tmp_path / "data"
    with serving(env, data_dir) as server:
        stop(server, signal.SIGKILL)
    assert (data_dir / "server.json").exists()
    exports, err = credentials(env, data_dir)
    assert exports["AWS_ENDPOINT_URL_ECR"] == server.url
    assert f"process {server.process.pid}" in err and "no longer running" in err


def test_several_workers_record_the_url_once(tmp_path: Path, env: dict[str, str]) -> None:
    data_dir = tmp_path / "data"
    with serving(env, data_dir, "--workers", "2") as server:
        exports, err = credentials(env, data_dir)
        assert exports["AWS_ENDPOINT_URL_ECR"] == server.url and err == ""
        record = json.loads((data_dir / "server.json").read_text())
        assert record["pid"] == server.process.pid
        assert stop(server) == 0
    assert not (data_dir / "server.json").exists()


def test_init_writes_the_running_servers_endpoint(tmp_path: Path, env: dict[str, str]) -> None:
    data_dir = tmp_path / "data"
    with serving(env, data_dir, "--no-aws-profile") as server:
        result = subprocess.run(
            [sys.executable, "-m", "cargohold", "admin", "init", "--data-dir", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert f"endpoint: {server.url}" in result.stdout and result.stderr == ""
    config = Path(env["AWS_CONFIG_FILE"]).read_text()
    assert config.count(f"endpoint_url = {server.url}") == 3


# -- the port first, then the profile ------------------------------------------------------


def test_a_server_that_cannot_listen_leaves_no_profile(tmp_path: Path, env: dict[str, str]) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = [sys.executable, "-m", "cargohold", "serve", "--port", str(port)]
        result = subprocess.run(
            [*command, "--data-dir", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode != 0
    assert "cargohold serving" not in result.stdout
    assert "address already in use" in (result.stdout + result.stderr).lower()
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        assert not Path(env[name]).exists()
    assert not (data_dir / "server.json").exists()

    # The next start, on a port that is free, writes the profile for the port it serves.
    with serving(env, data_dir) as server:
        log = server.log.read_text()
        assert log.index("saved as AWS profile [cargohold]") < log.index("cargohold serving")
        config = Path(env["AWS_CONFIG_FILE"]).read_text()
        assert config.count(f"endpoint_url = {server.url}") == 3
        assert f":{port}" not in config


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_exits_0(tmp_path: Path, env: dict[str, str], workers: int) -> None:
    with serving(env, tmp_path / "data", "--workers", str(workers)) as server:
        assert stop(server) == 0


def test_no_aws_profile_names_no_profile(tmp_path: Path, env: dict[str, str]) -> None:
    with serving(env, tmp_path / "data", "--no-aws-profile") as server:
        log = server.log.read_text()
    assert "--profile" not in log and "AWS profile" not in log
    assert "credentials: eval" in log
    assert not Path(env["AWS_CONFIG_FILE"]).exists()


# -- the admin commands follow the server's configuration ----------------------------------


def test_admin_commands_read_the_configuration_the_server_was_started_with(
    tmp_path: Path, env: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    elsewhere = tmp_path / "db" / "registry.db"
    elsewhere.parent.mkdir()
    toml = tmp_path / "cargohold.toml"
    toml.write_text(
        f'account_id = "111122223333"\nregion = "eu-west-3"\n'
        f'database_url = "sqlite:///{elsewhere}"\n'
    )
    with serving(env, data_dir, "--config", str(toml)) as server:
        log = server.log.read_text()
        assert f"--config {toml}" in log  # the hint names the configuration
        exports, err = credentials(env, data_dir)  # --data-dir only, as the hint once said
        assert err == ""
        assert exports["AWS_DEFAULT_REGION"] == "eu-west-3"
        assert exports["AWS_ENDPOINT_URL_ECR"] == server.url
        identity = boto3.client(
            "sts",
            endpoint_url=server.url,
            region_name="eu-west-3",
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        ).get_caller_identity()
        assert identity["Account"] == "111122223333"
        # No stray database, no second account.
        assert not (data_dir / "metadata.db").exists()
        accounts = admin_command(env, "account", "list", "--data-dir", str(data_dir))
        assert [line.split()[0] for line in accounts.stdout.splitlines()[1:]] == ["111122223333"]

    # Stopped, the record is gone: --data-dir alone finds no database, and says so.
    failed = admin_command(env, "credentials", "--data-dir", str(data_dir), check=False)
    assert failed.returncode == 1 and failed.stdout == ""
    assert "no cargohold metadata database" in failed.stderr and "--config" in failed.stderr
    assert not (data_dir / "metadata.db").exists()
    again = admin_command(env, "credentials", "--data-dir", str(data_dir), "--config", str(toml))
    assert "eu-west-3" in again.stdout


def admin_command(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", "admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def test_credentials_into_a_closed_pipe_print_no_error(tmp_path: Path, env: dict[str, str]) -> None:
    data_dir = tmp_path / "data"
    admin_command(env, "init", "--no-profile", "--data-dir", str(data_dir))
    script = (
        f"set -o pipefail; {sys.executable} -m cargohold admin credentials "
        f"--data-dir {data_dir} | head -1"
    )
    result = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.startswith("export AWS_ACCESS_KEY_ID=")
    assert "Broken pipe" not in result.stderr and "Traceback" not in result.stderr
