"""How a container definition, the task's overrides and the image's config make what runs, as
the Docker Engine merges them for ECS."""

from __future__ import annotations

from typing import Any

import pytest

from cargohold.agent.images import PulledImage
from cargohold.agent.runtime import container_spec

IMAGE = PulledImage(
    "sha256:" + "0" * 64,
    {
        "config": {
            "Entrypoint": ["/entry"],
            "Cmd": ["--serve"],
            "Env": ["PATH=/bin", "MODE=image"],
            "WorkingDir": "/app",
            "User": "app",
        }
    },
    (),
)
BASE = {"name": "main", "image": "h/app:1"}


def spec(definition: dict[str, Any], override: dict[str, Any] | None = None) -> Any:
    return container_spec(
        {**BASE, **definition},
        override or {},
        IMAGE,
        extra_env={"AWS_CONTAINER_AUTHORIZATION_TOKEN": "t"},
        network_mode="host",
        hostname="abc",
    )


@pytest.mark.parametrize(
    ("definition", "override", "argv"),
    [
        ({}, {}, ("/entry", "--serve")),
        ({"command": ["--once"]}, {}, ("/entry", "--once")),
        # An entryPoint replaces the image's, and with it the image's default command.
        ({"entryPoint": ["sh", "-c"]}, {}, ("sh", "-c")),
        ({"entryPoint": ["sh", "-c"], "command": ["echo"]}, {}, ("sh", "-c", "echo")),
        ({"command": ["--once"]}, {"command": ["--twice"]}, ("/entry", "--twice")),
    ],
)
def test_the_command(
    definition: dict[str, Any], override: dict[str, Any], argv: tuple[str, ...]
) -> None:
    assert spec(definition, override).argv == argv


def test_environment_directory_and_user() -> None:
    found = spec(
        {
            "environment": [{"name": "MODE", "value": "task"}, {"name": "A", "value": "1"}],
            "workingDirectory": "/tmp",
            "user": "65534:65534",
        },
        {"environment": [{"name": "A", "value": "2"}]},
    )
    assert found.env["MODE"] == "task"
    assert found.env["A"] == "2"
    assert found.env["PATH"] == "/bin"
    assert found.env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == "t"
    assert (found.working_dir, found.user) == ("/tmp", "65534:65534")
    defaults = spec({})
    assert (defaults.working_dir, defaults.user, defaults.env["MODE"]) == ("/app", "app", "image")


def test_nothing_to_run() -> None:
    empty = PulledImage(IMAGE.digest, {"config": {}}, ())
    with pytest.raises(RuntimeError, match="no command"):
        container_spec(BASE, {}, empty, extra_env={}, network_mode="none", hostname="x")
