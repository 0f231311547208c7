"""`cargohold ecs agent`: one container instance of a cluster.

It registers with the agent's own credentials (the standard AWS chain, as an instance role),
then polls for the tasks placed on it: each new one runs in a thread of its own (`TaskRun`),
and a running task whose desiredStatus turned STOPPED is stopped. On SIGTERM or SIGINT it stops
its tasks and deregisters.
"""

from __future__ import annotations

import functools
import json
import logging
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cargohold.agent.control import Control
from cargohold.agent.credentials_endpoint import CredentialsEndpoint
from cargohold.agent.images import Puller
from cargohold.agent.logsinks import make_sink
from cargohold.agent.runtime import Runtime
from cargohold.agent.task import TaskRun

log = logging.getLogger(__name__)

AGENT_VERSION = "1.0.0"


@dataclass(frozen=True)
class AgentConfig:
    cluster: str
    endpoint_url: str
    work_dir: Path
    poll_interval: float = 1.0


class Agent:
    def __init__(
        self, config: AgentConfig, runtime: Runtime, control: Control | None = None
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.control = control or Control(config.endpoint_url)
        self.puller = Puller(config.endpoint_url, self.control.region, config.work_dir / "images")
        self.endpoint = CredentialsEndpoint()
        self.instance_arn = ""
        self._runs: dict[str, TaskRun] = {}
        self._stopping = threading.Event()

    def register(self) -> str:
        identity = json.dumps({"instanceId": f"i-{socket.gethostname()[:40]}"})
        found = self.control.ecs.register_container_instance(
            cluster=self.config.cluster,
            instanceIdentityDocument=identity,
            versionInfo={"agentVersion": AGENT_VERSION, "dockerVersion": self.runtime.name},
            attributes=[{"name": "ecs.capability.cargohold-runtime", "value": self.runtime.name}],
        )["containerInstance"]
        self.instance_arn = found["containerInstanceArn"]
        log.info("registered as %s", self.instance_arn)
        return self.instance_arn

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        self.register()
        self.endpoint.start()
        try:
            while not self._stopping.wait(self.config.poll_interval):
                try:
                    self.poll()
                except Exception:
                    log.exception("poll failed")
        finally:
            for run in self._runs.values():
                run.stop_requested.set()
            for run in self._runs.values():
                run.done.wait(60)
            self._deregister()
            self.endpoint.close()

    def poll(self) -> None:
        ecs = self.control.ecs
        placed = ecs.list_tasks(
            cluster=self.config.cluster,
            containerInstance=self.instance_arn,
            desiredStatus="RUNNING",
        )["taskArns"]
        new = [arn for arn in placed if arn not in self._runs]
        if new:
            for task in ecs.describe_tasks(cluster=self.config.cluster, tasks=new)["tasks"]:
                self._start(task)
        live = [arn for arn, run in self._runs.items() if not run.done.is_set()]
        wanted_stopped = set(live) - set(placed)
        for arn in wanted_stopped:
            self._runs[arn].stop_requested.set()
        for arn in [a for a, r in self._runs.items() if r.done.is_set() and a not in placed]:
            del self._runs[arn]

    def _start(self, task: dict[str, Any]) -> None:
        run = TaskRun(
            task,
            cluster=self.config.cluster,
            instance_arn=self.instance_arn,
            control=self.control,
            puller=self.puller,
            runtime=self.runtime,
            endpoint=self.endpoint,
            sinks=functools.partial(make_sink, self.control),
        )
        self._runs[run.arn] = run
        threading.Thread(target=run.run, name=f"task-{run.arn[-8:]}", daemon=True).start()

    def _deregister(self) -> None:
        if not self.instance_arn:
            return
        try:
            self.control.ecs.deregister_container_instance(
                cluster=self.config.cluster, containerInstance=self.instance_arn, force=True
            )
        except Exception:
            log.exception("could not deregister %s", self.instance_arn)


def run_agent(agent: Agent) -> int:
    def stop(signum: int, frame: object) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        agent.run()
    except (BotoCoreError, ClientError) as exc:
        print(
            f"cargohold: the agent could not join ECS at {agent.config.endpoint_url}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0
