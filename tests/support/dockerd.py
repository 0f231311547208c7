"""The tests' Docker engine: a `dockerd` of their own on its own socket, started by
`scripts/test` (vfs storage, no bridge, no iptables), and the `docker` CLI pointed at it.

    def test_x(docker: DockerCli) -> None:
        docker("version")

`docker_host` (session) is the engine's `unix://` address; it fails the test, never skips it,
when nothing answers there. `docker` is the CLI with that DOCKER_HOST and a configuration
directory (DOCKER_CONFIG) of the test's own, so `docker login` never writes `~/.docker`.
`CARGOHOLD_TEST_DOCKER_HOST` points the tests at another engine.

Docker talks plain HTTP to a registry on 127.0.0.0/8 without being told it is insecure, so a
cargohold server on loopback needs no engine configuration.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from support.clients import ToolError, require_tool

DOCKER_SOCKET = "/run/cargohold-test-docker.sock"
DEFAULT_DOCKER_HOST = f"unix://{DOCKER_SOCKET}"
DOCKER_HOST_VARIABLE = "CARGOHOLD_TEST_DOCKER_HOST"
DEFAULT_TIMEOUT = 300.0

#: The statically linked busybox of Debian's busybox-static package: an image from it runs
#: without a base image, so building one needs no network.
BUSYBOX_STATIC = Path("/bin/busybox")


def docker_env(
    docker_host: str, config_dir: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """An environment for the docker CLI: `docker_host`, and `config_dir` as DOCKER_CONFIG
    (created), over `base` (default: this process's environment)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ if base is None else base)
    env.update(DOCKER_HOST=docker_host, DOCKER_CONFIG=str(config_dir), DOCKER_BUILDKIT="0")
    env.pop("DOCKER_CONTEXT", None)
    return env


class DockerCli:
    """`docker` against the tests' engine, with a configuration directory of its own."""

    def __init__(self, docker_host: str, config_dir: Path) -> None:
        self.binary = require_tool("docker")
        self.docker_host = docker_host
        self.config_dir = config_dir
        self.env = docker_env(docker_host, config_dir)

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args],
            env=self.env,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ToolError(result)
        return result

    def build_busybox(self, context: Path, tag: str | None = None) -> str:
        """Build an image holding only Debian's static busybox (no base image, no network) in
        `context`; its default command prints `hello from busybox`. Returns its tag."""
        if not BUSYBOX_STATIC.is_file():
            pytest.fail(
                f"{BUSYBOX_STATIC} is missing: install Debian's busybox-static "
                "(the README's test command does)",
                pytrace=False,
            )
        tag = tag or f"cargohold-test/busybox:{secrets.token_hex(4)}"
        context.mkdir(parents=True, exist_ok=True)
        shutil.copy2(BUSYBOX_STATIC, context / "busybox")
        (context / "Dockerfile").write_text(
            "FROM scratch\n"
            "COPY busybox /bin/busybox\n"
            'CMD ["/bin/busybox", "echo", "hello from busybox"]\n'
        )
        self("build", "--quiet", "--tag", tag, str(context))
        return tag

    def remove_images(self, *references: str) -> None:
        """`docker rmi --force` of whichever of `references` exist."""
        if references:
            self("rmi", "--force", *references, check=False)


def engine_answers(docker_host: str, timeout: float = 20.0) -> str | None:
    """None when the engine at `docker_host` answers `docker version`, else why not."""
    binary = require_tool("docker")
    try:
        result = subprocess.run(
            [binary, "version", "--format", "{{.Server.Version}}"],
            env={**os.environ, "DOCKER_HOST": docker_host},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`docker version` did not answer within {timeout}s"
    if result.returncode != 0 or not result.stdout.strip():
        return result.stderr.strip() or f"`docker version` exited with {result.returncode}"
    return None


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The `unix://` address of the tests' Docker engine; fails when it does not answer."""
    host = os.environ.get(DOCKER_HOST_VARIABLE, DEFAULT_DOCKER_HOST)
    problem = engine_answers(host)
    if problem is not None:
        pytest.fail(
            f"the tests' Docker engine does not answer at {host}: {problem}\n"
            "scripts/test starts it (dockerd --storage-driver vfs --bridge=none "
            f"--host {DEFAULT_DOCKER_HOST} …); run it, or set {DOCKER_HOST_VARIABLE}.",
            pytrace=False,
        )
    return host


@pytest.fixture
def docker(docker_host: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerCli]:
    """The docker CLI against the tests' engine, with a fresh DOCKER_CONFIG."""
    yield DockerCli(docker_host, tmp_path_factory.mktemp("docker-config"))
