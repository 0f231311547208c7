"""The `chroot` runtime, for hosts with no container engine: the image's layers unpacked by the
agent (`cargohold.agent.rootfs`), run as root in new PID, mount, UTS and IPC namespaces
(`unshare`, with a fresh `/proc`) and a network namespace of its own for `networkMode: none`;
`host` (and `bridge`, which needs an engine) share the host's network.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from cargohold.agent import enter
from cargohold.agent.rootfs import unpack
from cargohold.agent.runtime import ContainerSpec, LineSink

_DEVICES = {"null": (1, 3), "zero": (1, 5), "random": (1, 8), "urandom": (1, 9)}


def _pump(stream: IO[bytes], name: str, sink: LineSink) -> None:
    with stream:
        for line in stream:
            sink(name, line.decode("utf-8", "replace").rstrip("\n"))


class ChrootContainer:
    def __init__(
        self, process: subprocess.Popen[bytes], root: Path, pumps: list[threading.Thread]
    ) -> None:
        self._process = process
        self._root = root
        self._pumps = pumps
        self.runtime_id = f"chroot-{process.pid}"

    def wait(self, timeout: float | None) -> int | None:
        try:
            code = self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for pump in self._pumps:
            pump.join(5.0)
        return code if code >= 0 else 128 - code

    def _init_pid(self) -> int | None:
        """The container's first process: `unshare`'s only child."""
        path = Path(f"/proc/{self._process.pid}/task/{self._process.pid}/children")
        try:
            children = path.read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def stop(self, grace: float) -> None:
        if self._process.poll() is not None:
            return
        child = self._init_pid()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
        if self.wait(grace) is None:
            # `unshare --kill-child`: its death kills the namespace's first process, and with
            # it every process of the namespace.
            self._process.kill()
            self._process.wait()

    def remove(self) -> None:
        shutil.rmtree(self._root.parent, ignore_errors=True)


class ChrootRuntime:
    name = "chroot"
    needs_layers = True

    def __init__(self, work: Path) -> None:
        self._work = work
        if os.geteuid() != 0:
            raise RuntimeError("the chroot runtime runs as root")
        if shutil.which("unshare") is None:
            raise RuntimeError("the chroot runtime needs unshare (util-linux)")

    def start(self, spec: ContainerSpec, sink: LineSink) -> ChrootContainer:
        base = self._work / f"{spec.hostname}-{spec.name}"
        root = base / "rootfs"
        if base.exists():
            shutil.rmtree(base)
        unpack(spec.image.layers, root)
        _populate(root)
        command = ["unshare", "--pid", "--mount", "--uts", "--ipc", "--fork", "--kill-child"]
        if spec.network_mode == "none":
            command.append("--net")
        command.append(f"--mount-proc={root}/proc")
        read, write = os.pipe()
        command += [sys.executable, "-I", enter.__file__, str(read)]
        document = {
            "root": str(root),
            "hostname": spec.hostname,
            "user": spec.user,
            "workdir": spec.working_dir,
            "argv": list(spec.argv),
            "env": dict(spec.env),
        }
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(read,),
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )
        finally:
            os.close(read)
        with os.fdopen(write, "w", encoding="utf-8") as out:
            json.dump(document, out)
        assert process.stdout is not None and process.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(process.stdout, "stdout", sink), daemon=True),
            threading.Thread(target=_pump, args=(process.stderr, "stderr", sink), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        return ChrootContainer(process, root, pumps)


def _populate(root: Path) -> None:
    """`/proc` to mount on, and the few device nodes every program expects."""
    for name in ("proc", "dev"):
        # An image's own `/dev` or `/proc` link could point out of the root.
        place = root / name
        if place.is_symlink() or (place.exists() and not place.is_dir()):
            place.unlink()
        place.mkdir(exist_ok=True)
    dev = root / "dev"
    for name, (major, minor) in _DEVICES.items():
        node = dev / name
        if not node.exists():
            os.mknod(node, 0o666 | 0o020000, os.makedev(major, minor))
            node.chmod(0o666)
