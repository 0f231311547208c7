"""Where a container's output goes: `awslogs` (CloudWatch Logs on the registry's endpoint, in
the group its `logConfiguration` names and a stream named as ECS names them,
`PREFIX/CONTAINER/TASK-ID`, or `CONTAINER/TASK-ID` without `awslogs-stream-prefix`), else the
agent's own log. Lines are sent in batches, at least once a second, and all of them before the
task is reported STOPPED. As ECS's agent hands the `awslogs` driver the execution role's
credentials, those send the task's logs when it has one; the agent's own otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from cargohold.agent.control import Control, RoleCredentials

log = logging.getLogger(__name__)

_FLUSH_INTERVAL = 1.0
_BATCH = 1000


class LogSink(Protocol):
    def write(self, stream: str, line: str) -> None: ...

    def close(self) -> None: ...


class AgentLogSink:
    """Output of containers without `awslogs`: the agent's own log."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def write(self, stream: str, line: str) -> None:
        log.info("%s %s: %s", self._prefix, stream, line)

    def close(self) -> None:
        pass


class AwsLogsSink:
    def __init__(self, client: Any, group: str, stream: str, *, create_group: bool) -> None:
        self._client = client
        self._group = group
        self._stream = stream
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        try:
            if create_group:
                with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                    client.create_log_group(logGroupName=group)
            with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                client.create_log_stream(logGroupName=group, logStreamName=stream)
        except (ClientError, BotoCoreError) as exc:
            raise RuntimeError(f"failed to initialize logging driver: {exc}") from None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def write(self, stream: str, line: str) -> None:
        with self._lock:
            self._pending.append({"timestamp": int(time.time() * 1000), "message": line})

    def _run(self) -> None:
        while not self._closed.wait(_FLUSH_INTERVAL):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        for start in range(0, len(batch), _BATCH):
            try:
                self._client.put_log_events(
                    logGroupName=self._group,
                    logStreamName=self._stream,
                    logEvents=batch[start : start + _BATCH],
                )
            except (ClientError, BotoCoreError) as exc:
                log.warning("awslogs: %s lines lost: %s", len(batch[start:]), exc)
                return

    def close(self) -> None:
        self._closed.set()
        self._thread.join(10)
        self._flush()


def make_sink(
    control: Control,
    task: dict[str, Any],
    container: dict[str, Any],
    credentials: RoleCredentials | None,
) -> LogSink:
    task_id = task["taskArn"].rpartition("/")[2]
    config = container.get("logConfiguration") or {}
    if config.get("logDriver") != "awslogs":
        return AgentLogSink(f"{task_id}/{container['name']}")
    options = config.get("options") or {}
    group = options.get("awslogs-group")
    if not group:
        raise RuntimeError("failed to initialize logging driver: awslogs-group is required")
    prefix = options.get("awslogs-stream-prefix")
    stream = f"{container['name']}/{task_id}"
    if prefix:
        stream = f"{prefix}/{stream}"
    client = control.client("logs", credentials)
    create = str(options.get("awslogs-create-group", "")).lower() == "true"
    return AwsLogsSink(client, group, stream, create_group=create)
