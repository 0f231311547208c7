"""What the background services report as they work, for whoever watches (the Prometheus
metrics, `cargohold.metrics`); `UNOBSERVED` when nobody does.

The services call it once per job, scan or batch of the audit log, never per request: the hot
path's counts (the read caches' hits and misses) are plain integers the watcher reads on its own
schedule (`service.readcache.CACHE_COUNTS`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Observer(Protocol):
    def job_finished(self, kind: str, seconds: float, *, failed: bool) -> None:
        """One run of a job of `kind` ended (`failed`: its handler raised)."""
        ...

    def scan_finished(
        self, status: str, seconds: float | None, severities: Mapping[str, int]
    ) -> None:
        """A scan ended with `status` (COMPLETE, FAILED, UNSUPPORTED_IMAGE) after `seconds`
        (None: it was given up after its job's last attempt), with its findings by severity."""
        ...

    def decisions_recorded(self, denials: Mapping[str, int], failures: Mapping[str, int]) -> None:
        """A batch of the audit log: authorization denials by action, and rejected credentials
        by the operation they were presented for."""
        ...

    def event_sent(self, target: str, *, delivered: bool, lag: float) -> None:
        """One attempt to deliver an event to a webhook target: accepted (`delivered`) or not,
        `lag` seconds after the event was written."""
        ...


class Unobserved:
    """Nobody watches: every report is dropped."""

    def job_finished(self, kind: str, seconds: float, *, failed: bool) -> None:
        pass

    def scan_finished(
        self, status: str, seconds: float | None, severities: Mapping[str, int]
    ) -> None:
        pass

    def decisions_recorded(self, denials: Mapping[str, int], failures: Mapping[str, int]) -> None:
        pass

    def event_sent(self, target: str, *, delivered: bool, lag: float) -> None:
        pass


UNOBSERVED: Observer = Unobserved()

__all__ = ["UNOBSERVED", "Observer", "Unobserved"]
