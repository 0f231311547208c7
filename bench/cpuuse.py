"""Where the CPU went during a scenario: seconds used by each group of processes (a process and
its descendants), by the clients this harness started and reaped, and how busy the machine's
cores were altogether (every process on it, other users' included)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import psutil


def tree_cpu(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) used so far by `pids` and their living descendants."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total


def _reaped_children() -> float:
    times = os.times()
    return times.children_user + times.children_system


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of every core since boot."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    return total - idle, total


class CpuUse:
    """``with CpuUse({"store": [pid], "nodes": pids}) as use: ...`` then ``use.report()``."""

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        self._groups = {name: list(pids) for name, pids in groups.items()}
        self._start: dict[str, float] = {}
        self._result: dict[str, Any] = {}

    def _sample(self) -> dict[str, float]:
        busy, total = _machine()
        sample = {name: tree_cpu(pids) for name, pids in self._groups.items()}
        sample |= {"clients": _reaped_children(), "busy": busy, "total": total}
        sample["wall"] = time.perf_counter()
        return sample

    def __enter__(self) -> CpuUse:
        self._start = self._sample()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end = self._sample()
        wall = end["wall"] - self._start["wall"]
        cores = psutil.cpu_count() or 1
        result: dict[str, Any] = {
            f"{name}_cpu_s": round(end[name] - self._start[name], 1)
            for name in [*self._groups, "clients"]
        }
        total = end["total"] - self._start["total"]
        result["machine_busy"] = round((end["busy"] - self._start["busy"]) / total, 3)
        result["cores"] = cores
        result["seconds"] = round(wall, 1)
        self._result = result

    def report(self) -> dict[str, Any]:
        return dict(self._result)
