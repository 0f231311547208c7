"""One task on this container instance, from PENDING to STOPPED, as the ECS agent runs it.

The execution role's session (assumed by ECS as `ecs-tasks.amazonaws.com`) gets the registry
token every image is pulled with; a pull that fails stops the task before it starts, with
`CannotPullContainerError: …` (the task's stopCode is then `TaskFailedToStart`). Once every
image is pulled and verified, each container starts; the task is RUNNING; it stops when an
essential container exits, or when it is asked to stop (StopTask), and reports every
container's exit code.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cargohold.agent.control import (
    Control,
    CredentialsError,
    RefreshingCredentials,
    RoleCredentials,
)
from cargohold.agent.credentials_endpoint import CredentialsEndpoint
from cargohold.agent.images import PulledImage, Puller, PullError
from cargohold.agent.logsinks import LogSink
from cargohold.agent.runtime import RunningContainer, Runtime, container_spec

log = logging.getLogger(__name__)

#: How long a container has between SIGTERM and SIGKILL (ECS's default stopTimeout).
STOP_TIMEOUT = 30.0
_TICK = 0.25

#: The sink of a container's output: (task, container definition, execution credentials).
SinkFactory = Callable[[dict[str, Any], dict[str, Any], RoleCredentials | None], LogSink]


def _now() -> datetime:
    return datetime.now(UTC)


class TaskRun:
    def __init__(
        self,
        task: dict[str, Any],
        *,
        cluster: str,
        instance_arn: str,
        control: Control,
        puller: Puller,
        runtime: Runtime,
        endpoint: CredentialsEndpoint,
        sinks: SinkFactory,
    ) -> None:
        self.task = task
        self.arn: str = task["taskArn"]
        self._cluster = cluster
        self._instance = instance_arn
        self._control = control
        self._puller = puller
        self._runtime = runtime
        self._endpoint = endpoint
        self._sinks = sinks
        self.stop_requested = threading.Event()
        self.done = threading.Event()
        self._running: dict[str, RunningContainer] = {}
        self._stop_timeouts: dict[str, float] = {}
        self._exits: dict[str, int] = {}
        self._outputs: list[LogSink] = []
        self._execution: RoleCredentials | None = None
        self._token = ""

    # -- reporting --------------------------------------------------------------------------

    def _report(self, status: str, **more: Any) -> None:
        try:
            self._control.ecs.submit_task_state_change(
                cluster=self._cluster, task=self.arn, status=status, **more
            )
        except Exception:
            log.exception("could not report %s of %s", status, self.arn)

    def _fail(self, reason: str, **more: Any) -> None:
        containers = [
            {"containerName": c["name"], "status": "STOPPED", "reason": reason}
            for c in self.task["containers"]
        ]
        self._report("STOPPED", reason=reason, containers=containers, **more)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            log.exception("task %s failed", self.arn)
            self._stop_all()
            self._close_outputs()
            self._fail(f"CannotStartContainerError: {exc}")
        finally:
            for container in self._running.values():
                container.remove()
            self.done.set()

    def _close_outputs(self) -> None:
        for output in self._outputs:
            output.close()
        self._outputs.clear()

    def _run(self) -> None:
        definition = self._control.ecs.describe_task_definition(
            taskDefinition=self.task["taskDefinitionArn"]
        )["taskDefinition"]
        pull_started = _now()
        self._report("PENDING", pullStartedAt=pull_started)
        images = self._pull(definition, pull_started)
        if images is None:
            return
        self._report("PENDING", pullStoppedAt=_now())
        variables = self._task_credentials(definition)
        try:
            try:
                self._start(definition, images, variables)
            except PullError as exc:
                self._stop_all()
                self._fail(f"CannotPullContainerError: {exc.reason}", pullStoppedAt=_now())
                return
            self._report("RUNNING", containers=self._container_reports("RUNNING", images))
            reason = self._watch(definition)
        finally:
            self._endpoint.remove(variables)
            # Every line reaches its log before the task is reported stopped.
            self._close_outputs()
        self._report("DEPROVISIONING")
        self._report(
            "STOPPED",
            reason=reason,
            containers=self._container_reports("STOPPED", images),
            executionStoppedAt=_now(),
        )

    def _registry_token(self, definition: dict[str, Any]) -> str:
        execution = self.task["overrides"].get("executionRoleArn") or definition.get(
            "executionRoleArn"
        )
        if execution:
            self._execution = self._control.role_credentials(
                self._cluster, self._instance, self.arn, "execution"
            )
        self._token = self._control.registry_token(self._execution)
        return self._token

    def _pull(self, definition: dict[str, Any], started: datetime) -> dict[str, PulledImage] | None:
        try:
            token = self._registry_token(definition)
        except CredentialsError as exc:
            self._fail(
                "ResourceInitializationError: unable to pull secrets or registry auth: "
                "execution resource retrieval failed: unable to retrieve ecr registry auth: "
                f"{exc}",
                pullStartedAt=started,
                pullStoppedAt=_now(),
            )
            return None
        images: dict[str, PulledImage] = {}
        for container in definition["containerDefinitions"]:
            try:
                images[container["name"]] = self._puller.pull(
                    container["image"], token, layers=self._runtime.needs_layers
                )
            except PullError as exc:
                self._fail(
                    f"CannotPullContainerError: {exc.reason}",
                    pullStartedAt=started,
                    pullStoppedAt=_now(),
                )
                return None
        return images

    def _task_credentials(self, definition: dict[str, Any]) -> dict[str, str]:
        role = self.task["overrides"].get("taskRoleArn") or definition.get("taskRoleArn")
        if not role:
            return {}

        def fetch() -> Any:
            return self._control.role_credentials(self._cluster, self._instance, self.arn, "task")

        return self._endpoint.add(RefreshingCredentials(fetch))

    def _start(
        self,
        definition: dict[str, Any],
        images: dict[str, PulledImage],
        variables: dict[str, str],
    ) -> None:
        overrides = {o["name"]: o for o in self.task["overrides"].get("containerOverrides") or []}
        mode = definition.get("networkMode") or "bridge"
        task_id = self.arn.rpartition("/")[2]
        for container in definition["containerDefinitions"]:
            spec = container_spec(
                container,
                overrides.get(container["name"], {}),
                images[container["name"]],
                extra_env=variables,
                network_mode=mode,
                hostname=task_id[:12],
            )
            output = self._sinks(self.task, container, self._execution)
            self._outputs.append(output)
            self._stop_timeouts[container["name"]] = float(
                container.get("stopTimeout") or STOP_TIMEOUT
            )
            spec = dataclasses.replace(spec, registry_token=self._token)
            self._running[container["name"]] = self._runtime.start(spec, output.write)

    def _watch(self, definition: dict[str, Any]) -> str:
        essential = {
            c["name"] for c in definition["containerDefinitions"] if c.get("essential", True)
        }
        while True:
            for name, container in self._running.items():
                if name not in self._exits:
                    code = container.wait(_TICK / max(1, len(self._running)))
                    if code is not None:
                        self._exits[name] = code
            if self.stop_requested.is_set():
                self._stop_all()
                return "Task stopped by user"
            if essential & set(self._exits) or len(self._exits) == len(self._running):
                self._stop_all()
                return "Essential container in task exited"
            time.sleep(0.01)

    def _stop_all(self) -> None:
        for name, container in self._running.items():
            if name not in self._exits:
                container.stop(self._stop_timeouts.get(name, STOP_TIMEOUT))
                code = container.wait(5.0)
                if code is not None:
                    self._exits[name] = code

    def _container_reports(
        self, status: str, images: dict[str, PulledImage]
    ) -> list[dict[str, Any]]:
        reports = []
        for name, container in self._running.items():
            report: dict[str, Any] = {
                "containerName": name,
                "runtimeId": container.runtime_id,
                "imageDigest": images[name].digest,
                "status": status,
            }
            if status == "STOPPED" and name in self._exits:
                report["exitCode"] = self._exits[name]
            reports.append(report)
        return reports
