"""Thin wrappers around the real clients (skopeo, podman), pointed at one `RegistryServer`.

Both are isolated from the machine's configuration: their own registries.conf (marking the test
server insecure), an empty auth file, and for podman its own storage root on the vfs driver. Every
registry credential comes from the server's `registry_credentials()` hook.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from .images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    sha256_digest,
)
from .server import RegistryServer

DEFAULT_TIMEOUT = 300.0

# Subcommands that take --src-*/--dest-* options, and those that take the plain ones.
_SKOPEO_TWO_SIDED = {"copy", "sync"}
_SKOPEO_ONE_SIDED = {"inspect", "list-tags", "delete", "layers"}
_PODMAN_REMOTE = {"pull", "push", "search"}


class ToolError(RuntimeError):
    """A client exited non-zero; the message carries its command line and stderr."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        command = " ".join(str(arg) for arg in result.args)
        super().__init__(
            f"{command}\nexited with {result.returncode}\n"
            f"--- stderr ---\n{result.stderr}\n--- stdout ---\n{result.stdout}"
        )


def require_tool(name: str) -> str:
    """The path of `name`, or a test failure (never a skip) saying it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: the end-to-end tests drive the real client; "
            "install it (the README's test command does) and run again",
            pytrace=False,
        )
    return path


def _run(
    argv: Sequence[str], env: Mapping[str, str], *, check: bool, timeout: float
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(argv),
        env=dict(env),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise ToolError(result)
    return result


def _client_env(config_dir: Path, server: RegistryServer) -> dict[str, str]:
    """Environment for containers/image clients that ignores the machine's own configuration."""
    config_dir.mkdir(parents=True, exist_ok=True)
    registries = config_dir / "registries.conf"
    registries.write_text(
        "unqualified-search-registries = []\n\n"
        f'[[registry]]\nlocation = "{server.host}"\ninsecure = true\n'
    )
    auth = config_dir / "auth.json"
    if not auth.exists():
        auth.write_text('{"auths": {}}\n')
    tmp = config_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        CONTAINERS_REGISTRIES_CONF=str(registries),
        REGISTRY_AUTH_FILE=str(auth),
        TMPDIR=str(tmp),
    )
    return env


def _creds(server: RegistryServer) -> str | None:
    credentials = server.registry_credentials()
    return None if credentials is None else f"{credentials[0]}:{credentials[1]}"


class Skopeo:
    """`skopeo`, with TLS verification off and credentials added for every registry access."""

    def __init__(self, server: RegistryServer, config_dir: Path) -> None:
        self.binary = require_tool("skopeo")
        self.server = server
        self.env = _client_env(config_dir, server)

    def argv(self, *args: str) -> list[str]:
        if not args:
            raise ValueError("a skopeo subcommand is required")
        subcommand, rest = args[0], list(args[1:])
        options: list[str] = []
        creds = _creds(self.server)
        if subcommand in _SKOPEO_TWO_SIDED:
            options += ["--src-tls-verify=false", "--dest-tls-verify=false"]
            if creds is not None:
                options += ["--src-creds", creds, "--dest-creds", creds]
        elif subcommand in _SKOPEO_ONE_SIDED:
            options += ["--tls-verify=false"]
            if creds is not None:
                options += ["--creds", creds]
        return [self.binary, "--insecure-policy", subcommand, *options, *rest]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return _run(self.argv(*args), self.env, check=check, timeout=timeout)

    def popen(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """Start skopeo in the background, its output going to `log`."""
        with log.open("wb") as out:
            return subprocess.Popen(
                self.argv(*args),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def ref(self, name: str, reference: str) -> str:
        """`docker://HOST/name:tag` or `docker://HOST/name@digest`."""
        separator = "@" if ":" in reference else ":"
        return f"docker://{self.server.host}/{name}{separator}{reference}"


class Podman:
    """`podman` with its own storage (vfs) under a temp directory, talking to the test server."""

    def __init__(self, server: RegistryServer, base_dir: Path) -> None:
        self.binary = require_tool("podman")
        self.server = server
        self.env = _client_env(base_dir / "config", server)
        root, runroot, tmpdir = base_dir / "root", base_dir / "runroot", base_dir / "libpod-tmp"
        for path in (root, runroot, tmpdir):
            path.mkdir(parents=True, exist_ok=True)
        storage_conf = base_dir / "config" / "storage.conf"
        storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{runroot}"\ngraphroot = "{root}"\n'
        )
        containers_conf = base_dir / "config" / "containers.conf"
        containers_conf.write_text(
            '[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n'
        )
        self.env.update(
            CONTAINERS_STORAGE_CONF=str(storage_conf), CONTAINERS_CONF=str(containers_conf)
        )
        self._global = [
            "--root",
            str(root),
            "--runroot",
            str(runroot),
            "--storage-driver",
            "vfs",
            "--tmpdir",
            str(tmpdir),
            "--events-backend",
            "file",
            "--cgroup-manager",
            "cgroupfs",
        ]

    def argv(self, *args: str) -> list[str]:
        if not args:
            raise ValueError("a podman subcommand is required")
        subcommand, rest = args[0], list(args[1:])
        options: list[str] = []
        creds = _creds(self.server)
        if subcommand in _PODMAN_REMOTE and creds is not None:
            options += ["--creds", creds]
        return [self.binary, *self._global, subcommand, *options, *rest]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return _run(self.argv(*args), self.env, check=check, timeout=timeout)

    def bare(self, *args: str) -> list[str]:
        """The command line without injected credentials: it relies on `podman login`."""
        return [self.binary, *self._global, *args]

    def ref(self, name: str, tag: str) -> str:
        return f"{self.server.host}/{name}:{tag}"


# --- plain HTTP against /v2/ (for what no client does: artifacts, referrers, raw checks) ---------

ACCEPT_MANIFESTS = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST])


def get_manifest(client: httpx.Client, name: str, reference: str) -> httpx.Response:
    return client.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": ACCEPT_MANIFESTS})


def push_blob(client: httpx.Client, name: str, data: bytes) -> str:
    """Upload `data` with POST then a monolithic PUT; return its digest."""
    digest = sha256_digest(data)
    started = client.post(f"/v2/{name}/blobs/uploads/")
    if started.status_code != 202:
        raise AssertionError(f"POST upload → {started.status_code} {started.text}")
    location = started.headers["Location"]
    separator = "&" if "?" in location else "?"
    done = client.put(
        f"{location}{separator}digest={digest}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    if done.status_code != 201:
        raise AssertionError(f"PUT upload → {done.status_code} {done.text}")
    return digest


def push_manifest(
    client: httpx.Client, name: str, reference: str, body: bytes, media_type: str
) -> httpx.Response:
    return client.put(
        f"/v2/{name}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
    )


def error_codes(response: httpx.Response) -> list[str]:
    """The `code`s of an OCI error body (empty when the body is not one)."""
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        return []
    return [str(error.get("code")) for error in errors if isinstance(error, dict)]
