"""`docker-credential-cargohold` speaking the credential-helper protocol from the AWS credential
chain, with its token cache; and podman pulling through it from `credHelpers` with no login."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.busybox import BusyboxImage
from support.clients import Podman
from support.fixtures import LiveServers
from support.server import RegistryServer

HELPER = "docker-credential-cargohold"


@pytest.fixture(scope="module")
def server(live_servers: LiveServers) -> RegistryServer:
    found = live_servers.start("credential-helper-server")
    found.create_repository("busybox")
    with found.client() as client:
        BusyboxImage.make().push(client, "busybox", "1.0")
    return found


def helper_dir(tmp: Path) -> Path:
    """The console script `pyproject.toml` installs, for the Python running the tests."""
    directory = tmp / "bin"
    directory.mkdir(exist_ok=True)
    script = directory / HELPER
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "from cargohold.credential_helper import main\nsys.exit(main())\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def helper_env(server: RegistryServer, tmp: Path, **more: str) -> dict[str, str]:
    admin = server.admin_credentials()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{helper_dir(tmp)}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        AWS_ACCESS_KEY_ID=admin["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=admin["AWS_SECRET_ACCESS_KEY"],
        AWS_DEFAULT_REGION=admin["AWS_DEFAULT_REGION"],
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        XDG_CACHE_HOME=str(tmp / "cache"),
    )
    env.update(more)
    return env


def helper(env: dict[str, str], action: str, given: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HELPER, action], input=given, env=env, capture_output=True, text=True, timeout=60
    )


def test_get_answers_a_token_that_pulls(server: RegistryServer, tmp_path: Path) -> None:
    env = helper_env(server, tmp_path)
    found = helper(env, "get", server.host + "\n")
    assert found.returncode == 0, found.stdout + found.stderr
    answer = json.loads(found.stdout)
    assert (answer["ServerURL"], answer["Username"]) == (server.host, "AWS")
    pulled = httpx.get(
        f"{server.url}/v2/busybox/manifests/1.0",
        auth=("AWS", answer["Secret"]),
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert pulled.status_code == 200
    # Cached: the same token again, and the cache file is its user's only.
    again = json.loads(helper(env, "get", f"http://{server.host}").stdout)
    assert again["Secret"] == answer["Secret"]
    cached = list((tmp_path / "cache" / "cargohold" / "registry-tokens").iterdir())
    assert len(cached) == 1 and stat.S_IMODE(cached[0].stat().st_mode) == 0o600
    assert json.loads(helper(env, "list", "").stdout) == {server.host: "AWS"}
    assert helper(env, "erase", server.host).returncode == 0
    assert not any((tmp_path / "cache" / "cargohold" / "registry-tokens").iterdir())
    assert helper(env, "store", '{"ServerURL":"x","Username":"u","Secret":"s"}').returncode == 0
    assert json.loads(helper(env, "list", "").stdout) == {}


def test_get_fails_without_credentials(server: RegistryServer, tmp_path: Path) -> None:
    env = helper_env(server, tmp_path, AWS_SECRET_ACCESS_KEY="wrong")
    found = helper(env, "get", server.host)
    assert found.returncode == 1
    assert "GetAuthorizationToken" in found.stdout
    assert helper(env, "nonsense", "").returncode == 1


def test_podman_pulls_through_the_helper(
    server: RegistryServer, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A short directory: podman refuses a runroot path over 50 characters.
    base = tmp_path_factory.mktemp("pm")
    podman = Podman(server, base)
    auth = base / "config" / "auth.json"
    auth.write_text(json.dumps({"auths": {}, "credHelpers": {server.host: "cargohold"}}))
    env: dict[str, Any] = {**podman.env, **helper_env(server, tmp_path)}
    env["REGISTRY_AUTH_FILE"] = str(auth)
    result = subprocess.run(
        podman.bare("pull", "--tls-verify=false", f"{server.host}/busybox:1.0"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    digest = subprocess.run(
        podman.bare("image", "inspect", "--format", "{{.Digest}}", f"{server.host}/busybox:1.0"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    assert digest == BusyboxImage.make().digest
