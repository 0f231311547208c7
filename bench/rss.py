"""Peak resident memory of a server and all its children, sampled every 50 ms."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil

INTERVAL_S = 0.05
MIB = 1 << 20


def tree_rss(pid: int) -> int:
    """Bytes resident in ``pid`` and its descendants (worker processes count too)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


class PeakRss:
    """``with PeakRss(pid) as peak: ...`` then ``peak.mib`` is the largest sample seen."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"rss-{pid}", daemon=True)

    def _sample(self) -> None:
        while True:
            self._peak = max(self._peak, tree_rss(self._pid))
            if self._stop.wait(INTERVAL_S):
                return

    def __enter__(self) -> PeakRss:
        self._peak = tree_rss(self._pid)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, tree_rss(self._pid))

    @property
    def mib(self) -> float:
        return self._peak / MIB
