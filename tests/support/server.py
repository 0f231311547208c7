"""A cargohold server run as a real subprocess on a free loopback port, for end-to-end tests.

Every credential a client needs and every repository a test pushes to goes through
`registry_credentials()` and `create_repository()`: today `/v2/` is open and pushing creates a
repository; when authentication lands, those two methods are the only place that changes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

_READY_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0


class ServerError(RuntimeError):
    """The server failed to start, died, or did not shut down when asked."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class RegistryServer:
    """`python -m cargohold serve` on `data_dir`, logging to `log_path`; restarts keep the port."""

    def __init__(self, data_dir: Path, log_path: Path, *, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self._bind_host = host
        self._port = free_port(host)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # --- addresses ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        """`host:port`, as image references name the registry."""
        return f"{self._bind_host}:{self._port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServerError("the server is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- the hooks that authentication will fill in ---------------------------------------------

    def registry_credentials(self) -> tuple[str, str] | None:
        """(username, password) for `/v2/`, or None while `/v2/` is open."""
        return None

    def create_repository(self, name: str) -> None:
        """Make `name` ready to be pushed to. Pushing creates a repository for now."""
        del name

    def auth(self) -> httpx.BasicAuth | None:
        credentials = self.registry_credentials()
        return None if credentials is None else httpx.BasicAuth(*credentials)

    def client(self, *, timeout: float = 60.0) -> httpx.Client:
        """An HTTP client for `/v2/` with the credentials above."""
        return httpx.Client(base_url=self.url, auth=self.auth(), timeout=timeout)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            raise ServerError(f"the server is already running as pid {self.pid}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"\n=== start on {self.host} ===\n".encode())
        self._log.flush()
        command = [
            sys.executable,
            "-m",
            "cargohold",
            "serve",
            "--host",
            self._bind_host,
            "--port",
            str(self._port),
            "--data-dir",
            str(self.data_dir),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOHOLD_")}
        env["PYTHONUNBUFFERED"] = "1"
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.data_dir.parent,
            # Its own process group, so kill() also takes down any worker it forks.
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                code = self._process.returncode
                self._close_log()
                raise ServerError(
                    f"the server exited with {code} while starting\n{self.log_tail()}"
                )
            try:
                httpx.get(f"{self.url}/v2/", timeout=1.0)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            return
        self.kill()
        raise ServerError(f"the server did not answer within {_READY_TIMEOUT}s\n{self.log_tail()}")

    def stop(self, timeout: float = _STOP_TIMEOUT) -> int:
        """SIGTERM and wait; a server that does not exit in time is killed and reported."""
        process = self._require_process()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise ServerError(
                    f"the server ignored SIGTERM for {timeout}s\n{self.log_tail()}"
                ) from None
        self._close_log()
        self._process = None
        return process.returncode

    def kill(self) -> None:
        """SIGKILL the server's process group, as a power cut would."""
        process = self._require_process()
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(_STOP_TIMEOUT)
        self._close_log()
        self._process = None

    def restart(self) -> None:
        """Stop (if running) and start again on the same port and data directory."""
        if self.running:
            self.stop()
        self._process = None
        self.start()

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise ServerError("the server was not started")
        return self._process

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # --- diagnostics ----------------------------------------------------------------------------

    def log_tail(self, lines: int = 200) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])
