"""CPU that processes outside the benchmark used while a scenario ran.

The benchmark shares its machine; a number measured while something else kept a core busy is worth
less. Foreign CPU = the whole machine's busy time minus what this process, its children (skopeo,
wrk, hey) and the servers used, averaged over the scenario's wall time, in cores.
"""

from __future__ import annotations

import os
import time
from types import TracebackType

import psutil

_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """Seconds of CPU the whole machine spent not idle since boot (all cores)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guests are inside user
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / _TICKS


def own_cpu_s() -> float:
    """CPU seconds of this process, its reaped children and every live descendant."""
    me = psutil.Process()
    times = me.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in me.children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


class ForeignCpu:
    """``with ForeignCpu() as busy: ...`` then ``busy.cores`` is others' average CPU use."""

    def __init__(self) -> None:
        self.cores = 0.0
        self._start = (0.0, 0.0, 0.0)

    def __enter__(self) -> ForeignCpu:
        self._start = (time.monotonic(), machine_busy_s(), own_cpu_s())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        wall = time.monotonic() - self._start[0]
        busy = machine_busy_s() - self._start[1]
        own = own_cpu_s() - self._start[2]
        self.cores = max(0.0, (busy - own) / wall) if wall > 0 else 0.0
