"""What a runtime is given to run one container, and what it hands back.

`container_spec` merges a container definition (with the task's overrides) over the image's
config as the Docker Engine does for ECS: `entryPoint` replaces the image's entrypoint and then
its default command too; `command` replaces the command; `environment` adds to the image's
variables; `workingDirectory` and `user` replace the image's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cargohold.agent.images import PulledImage

#: Receives each line a container writes: (stream name `stdout`/`stderr`, the line).
LineSink = Callable[[str, str], None]


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image_uri: str
    image: PulledImage
    argv: tuple[str, ...]
    env: Mapping[str, str]
    working_dir: str
    user: str
    #: `host` or `none` (`bridge` is mapped by each runtime to what its engine offers).
    network_mode: str
    hostname: str
    #: A registry token the engine pulls with (docker, podman).
    registry_token: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


class RunningContainer(Protocol):
    runtime_id: str

    def wait(self, timeout: float | None) -> int | None:
        """The exit code once it exited; None while it runs after `timeout` seconds."""
        ...

    def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        ...

    def remove(self) -> None: ...


class Runtime(Protocol):
    name: str
    #: Whether the agent unpacks the layers itself (chroot) or the engine pulls them.
    needs_layers: bool

    def start(self, spec: ContainerSpec, sink: LineSink) -> RunningContainer:
        """Create and start the container; its output goes to `sink` line by line. Raises
        RuntimeError with the reason it could not start."""
        ...


def container_spec(
    definition: Mapping[str, Any],
    override: Mapping[str, Any],
    image: PulledImage,
    *,
    extra_env: Mapping[str, str],
    network_mode: str,
    hostname: str,
) -> ContainerSpec:
    config = image.config.get("config") or {}
    entrypoint: Sequence[str] = definition.get("entryPoint") or config.get("Entrypoint") or []
    if "command" in override:
        command = override["command"]
    elif definition.get("command"):
        command = definition["command"]
    elif definition.get("entryPoint"):
        command = []
    else:
        command = config.get("Cmd") or []
    argv = (*entrypoint, *command)
    if not argv:
        raise RuntimeError("no command specified")
    env: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    for source in (definition.get("environment") or [], override.get("environment") or []):
        for pair in source:
            env[str(pair.get("name"))] = str(pair.get("value", ""))
    env.update(extra_env)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("HOSTNAME", hostname)
    return ContainerSpec(
        name=str(definition["name"]),
        image_uri=str(definition["image"]),
        image=image,
        argv=tuple(str(a) for a in argv),
        env=env,
        working_dir=str(definition.get("workingDirectory") or config.get("WorkingDir") or "/"),
        user=str(definition.get("user") or config.get("User") or ""),
        network_mode=network_mode,
        hostname=hostname,
    )
