"""bench/cpucap.py caps a process's CPU: a busy loop in a group of a tenth of a core gets about
a tenth of a core, and leaving the group removes it and frees the process again. The scale-out
bench measures nodes capped this way, so a cap that does nothing would mislead it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_cpucap", REPO / "bench" / "cpucap.py")
assert spec is not None and spec.loader is not None
cpucap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cpucap)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def test_a_busy_loop_in_a_tenth_of_a_core_gets_about_a_tenth() -> None:
    assert cpucap.usable() is None, cpucap.usable()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        process = psutil.Process(busy.pid)
        with cpucap.CpuCap("test", 0.1) as cap:
            cap.add(busy.pid)
            assert str(busy.pid) in (cap.path / "cgroup.procs").read_text().split()
            start, started = cpu_seconds(process), time.monotonic()
            wait_until(lambda: cpu_seconds(process) - start >= 0.3, timeout=30)
            wall = time.monotonic() - started
        # 0.3 CPU seconds at 0.1 core take about 3 s; uncapped they take 0.3 s.
        assert wall >= 2.0, f"0.3 CPU s in {wall:.2f} s: the cap did not hold"
        assert not cap.path.exists()
        start, started = cpu_seconds(process), time.monotonic()
        wait_until(lambda: cpu_seconds(process) - start >= 0.3, timeout=30)
        assert time.monotonic() - started < 2.0, "the process stayed capped after the block"
    finally:
        busy.kill()
        busy.wait()


def test_a_cap_of_no_cores_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        cpucap.CpuCap("zero", 0)
