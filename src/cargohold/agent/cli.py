"""`cargohold ecs agent --cluster NAME [--endpoint-url URL] [--runtime docker|podman|chroot]`."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from cargohold.agent.runtime import Runtime


def _runtime(name: str, work: Path, endpoint: str) -> Runtime:
    try:
        if name == "chroot":
            from cargohold.agent.chroot import ChrootRuntime

            return ChrootRuntime(work / "containers")
        from cargohold.agent.engine import EngineRuntime

        if name == "podman":
            return EngineRuntime.podman(endpoint)
        return EngineRuntime("docker", endpoint)
    except RuntimeError as exc:
        raise SystemExit(f"cargohold: {exc}") from None


def _default_endpoint(args: argparse.Namespace, load: Any) -> str:
    from cargohold import serving

    endpoint = serving.client_endpoint(load(args))
    if endpoint.warning:
        logging.getLogger(__name__).warning("%s", endpoint.warning)
    return str(endpoint.url)


def _agent(args: argparse.Namespace, load: Any) -> int:
    from cargohold.agent.agent import Agent, AgentConfig, run_agent

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    endpoint = (
        args.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_ECS")
        or os.environ.get("AWS_ENDPOINT_URL")
        or _default_endpoint(args, load)
    )
    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = AgentConfig(args.cluster, endpoint, work, poll_interval=args.poll_interval)
    return run_agent(Agent(config, _runtime(args.runtime, work, endpoint)))


def add_parser(commands: Any, common: Any, load: Any) -> None:
    ecs = commands.add_parser("ecs", help="ECS: run tasks on this machine")
    sub = ecs.add_subparsers(dest="ecs_command", required=True)
    agent = sub.add_parser("agent", help="serve a cluster as a container instance")
    common(agent)
    agent.add_argument(
        "--cluster", default="default", help="the cluster to join (default: default)"
    )
    agent.add_argument("--endpoint-url", help="the registry's URL (default: the local one)")
    agent.add_argument(
        "--runtime",
        choices=("docker", "podman", "chroot"),
        default="docker",
        help="how containers run (default: docker)",
    )
    agent.add_argument(
        "--work-dir",
        default="./cargohold-agent",
        help="image cache and container roots (default: ./cargohold-agent)",
    )
    agent.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="seconds between polls for tasks (default: 1)",
    )
    agent.set_defaults(func=lambda args: _agent(args, load))
