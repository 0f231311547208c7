"""The `docker` runtime (the default, as for ECS's own agent) and `podman`: the Docker Engine
API through its socket (`DOCKER_HOST`; for podman `CONTAINER_HOST`, else its rootful socket),
with the Docker SDK. The engine pulls the image by the digest the agent resolved and checked,
from the registry's own address, with the execution role's token as registry auth; then
create, start, wait, logs, remove.

`networkMode` `host` and `none` are the engine's; `bridge` is the engine's bridge network
where it has one, else `none` (a daemon run with `--bridge=none` has none).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import docker
from docker.errors import APIError, DockerException, NotFound

from cargohold.agent.images import PullError, parse_image
from cargohold.agent.runtime import ContainerSpec, LineSink

PODMAN_SOCKET = "unix:///run/podman/podman.sock"
_POLL = 0.1


def _pump(container: Any, stream: str, sink: LineSink) -> None:
    """Follow one output stream line by line until the container stops. A follow can end
    before it delivered the last bytes a container wrote just before exiting, so what it
    missed is read once more afterwards."""
    pending = b""
    received = 0
    wanted = {"stdout": stream == "stdout", "stderr": stream == "stderr"}

    def emit(chunk: bytes) -> None:
        nonlocal pending
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            sink(stream, line.decode("utf-8", "replace"))

    try:
        for chunk in container.logs(stream=True, follow=True, **wanted):
            received += len(chunk)
            emit(chunk)
        everything = container.logs(stream=False, **wanted)
        emit(everything[received:])
    except DockerException:
        pass
    if pending:
        sink(stream, pending.decode("utf-8", "replace"))


class EngineContainer:
    def __init__(self, container: Any, pumps: list[threading.Thread]) -> None:
        self._container = container
        self._pumps = pumps
        self.runtime_id: str = container.id

    def wait(self, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._container.reload()
            state = self._container.attrs["State"]
            if state.get("Status") in ("exited", "dead"):
                for pump in self._pumps:
                    pump.join(5.0)
                return int(state.get("ExitCode", 0))
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(_POLL)

    def stop(self, grace: float) -> None:
        with contextlib.suppress(NotFound):
            self._container.stop(timeout=max(0, int(grace)))

    def remove(self) -> None:
        with contextlib.suppress(NotFound):
            self._container.remove(force=True)


class EngineRuntime:
    #: The engine pulls; the agent only resolves and checks the manifest.
    needs_layers = False

    def __init__(self, name: str, endpoint_url: str, base_url: str | None = None) -> None:
        self.name = name
        self._registry = urlsplit(endpoint_url).netloc
        try:
            if base_url is None:
                self._client = docker.from_env()
            else:
                self._client = docker.DockerClient(base_url=base_url)
            self._client.ping()
        except DockerException as exc:
            raise RuntimeError(f"the {name} runtime cannot reach its engine: {exc}") from None

    @classmethod
    def podman(cls, endpoint_url: str) -> EngineRuntime:
        return cls("podman", endpoint_url, os.environ.get("CONTAINER_HOST") or PODMAN_SOCKET)

    def _network(self, mode: str) -> str:
        if mode in ("host", "none"):
            return mode
        if self._client.networks.list(names=["bridge"]):
            return "bridge"
        return "none"

    def _pull(self, spec: ContainerSpec) -> str:
        """The image by the checked digest, from the registry's own address."""
        image = parse_image(spec.image_uri)
        repository = f"{self._registry}/{image.repository}"
        reference = f"{repository}@{spec.image.digest}"
        auth = {"username": "AWS", "password": spec.registry_token}
        try:
            self._client.api.pull(repository, tag=spec.image.digest, auth_config=auth)
            pulled = self._client.images.get(reference)
        except (APIError, DockerException) as exc:
            raise PullError(f"Error response from daemon: {exc}") from None
        if reference not in (pulled.attrs.get("RepoDigests") or []):
            raise PullError(f"the engine holds no {reference} after pulling it")
        return reference

    def start(self, spec: ContainerSpec, sink: LineSink) -> EngineContainer:
        reference = self._pull(spec)
        try:
            container = self._client.containers.create(
                reference,
                entrypoint=list(spec.argv[:1]),
                command=list(spec.argv[1:]),
                environment=[f"{k}={v}" for k, v in spec.env.items()],
                working_dir=spec.working_dir,
                user=spec.user or None,
                hostname=spec.hostname if spec.network_mode != "host" else None,
                network_mode=self._network(spec.network_mode),
                labels=dict(spec.labels),
            )
            container.start()
        except (APIError, DockerException) as exc:
            raise RuntimeError(f"Error response from daemon: {exc}") from None
        pumps = [
            threading.Thread(target=_pump, args=(container, name, sink), daemon=True)
            for name in ("stdout", "stderr")
        ]
        for pump in pumps:
            pump.start()
        return EngineContainer(container, pumps)
