"""A CPU limit for a group of processes: a control group whose members together get at most a
given number of cores (CFS bandwidth control), so that processes sharing one machine each run
as if on a small machine of their own.

Needs root and a writable cpu controller: cgroup v1's `cpu` hierarchy (cpu.cfs_quota_us) or
cgroup v2 with `cpu` enabled (cpu.max). Anything else is refused with the reason, never
ignored: an uncapped run would measure something else.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from types import TracebackType

#: CFS's accounting period, in microseconds (the kernel's default).
PERIOD_US = 100_000
V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")


class CpuCapUnavailable(RuntimeError):
    """This machine or user cannot cap CPU by control groups."""


def _hierarchy() -> tuple[Path, bool]:
    """The cpu controller's root, and whether it is cgroup v2."""
    if (V1 / "cpu.cfs_quota_us").exists() or (V1 / "tasks").exists():
        return V1, False
    controllers = V2 / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return V2, True
    raise CpuCapUnavailable("no cpu controller under /sys/fs/cgroup (v1 cpu, or v2 with cpu)")


class CpuCap:
    """`cores` of CPU (0.1 is a tenth of one core) shared by the processes `add`ed; leaving
    the block moves them back to the root group and removes the group."""

    def __init__(self, name: str, cores: float) -> None:
        if cores <= 0:
            raise ValueError(f"cores must be positive: {cores}")
        self.cores = cores
        root, self._v2 = _hierarchy()
        self._root = root
        self.path = root / f"cargohold-bench-{name}-{secrets.token_hex(3)}"

    def __enter__(self) -> CpuCap:
        quota = max(1000, round(self.cores * PERIOD_US))
        try:
            self.path.mkdir()
            if self._v2:
                (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            else:
                (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.path.rmdir()
            raise CpuCapUnavailable(
                f"cannot make a CPU-limited group at {self.path}: {exc}"
            ) from exc
        return self

    def add(self, pid: int) -> None:
        """Move `pid` with all its threads (and the children it starts later) into the group."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):
            for line in (self.path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (self._root / "cgroup.procs").write_text(line)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def usable() -> str | None:
    """None when caps can be made here, else why not."""
    if os.geteuid() != 0:
        return "capping CPU by control groups needs root"
    try:
        with CpuCap("probe", 0.5):
            return None
    except CpuCapUnavailable as exc:
        return str(exc)
