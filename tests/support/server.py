"""A cargohold server run as a real subprocess on a free loopback port, for end-to-end tests.

Every credential a client needs and every repository a test pushes to goes through
`registry_credentials()` and `create_repository()`: `/v2/` wants a token from ECR's
GetAuthorizationToken, and a push needs its repository created through the ECR API first, as
on AWS. The server writes its administrator's AWS profile into files of its own, never `~/.aws`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import boto3
import httpx
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from support.waiting import NeverHappened, wait_until

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

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        host: str = "127.0.0.1",
        extra_args: tuple[str, ...] = (),
        tls_ca: Path | None = None,
    ) -> None:
        self.extra_args = extra_args
        #: The CA the server's certificate chains to, when it serves HTTPS.
        self.tls_ca = tls_ca
        self.data_dir = data_dir
        self.log_path = log_path
        self._bind_host = host
        self._port = free_port(host)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._admin: dict[str, str] | None = None
        self._password: str | None = None

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
        return f"{'https' if self.tls_ca else 'http'}://{self.host}"

    @property
    def verify(self) -> str | bool:
        """What HTTP clients verify the server's certificate with."""
        return str(self.tls_ca) if self.tls_ca else True

    def ssl_context(self) -> ssl.SSLContext | bool:
        """The same, for httpx."""
        return ssl.create_default_context(cafile=str(self.tls_ca)) if self.tls_ca else True

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServerError("the server is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- credentials and repositories ----------------------------------------------------------

    def admin_credentials(self) -> dict[str, str]:
        """The administrator's AWS variables, from `cargohold admin credentials`."""
        if self._admin is None:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cargohold",
                    "admin",
                    "credentials",
                    "--data-dir",
                    str(self.data_dir),
                    *self._config_option(),
                ],
                check=True,
                capture_output=True,
                text=True,
                env=self._env(),
            ).stdout
            found: dict[str, str] = {}
            for word in out.replace("\n", " ").split():
                if "=" in word and word.startswith("AWS_"):
                    key, _, value = word.partition("=")
                    found[key] = value.strip("'\"")
            self._admin = found
        return self._admin

    def _config_option(self) -> list[str]:
        """`--config FILE` when the server was started with one (its database may be there)."""
        args = list(self.extra_args)
        if "--config" in args[:-1]:
            return ["--config", args[args.index("--config") + 1]]
        return []

    def ecr_client(self, **session: str) -> Any:
        """A boto3 ECR client of the administrator (or of the given key)."""
        return self.aws_client("ecr", **session)

    def iam_client(self, **session: str) -> Any:
        """A boto3 IAM client of the administrator (or of the given key)."""
        return self.aws_client("iam", **session)

    def sts_client(self, **session: str) -> Any:
        """A boto3 STS client of the administrator (or of the given key)."""
        return self.aws_client("sts", **session)

    def aws_client(self, service: str, **session: str) -> Any:
        """A boto3 client of the administrator, or of `key`/`secret` (and `token`, for
        temporary credentials), whose endpoint is this server."""
        creds = self.admin_credentials()
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.url,
            region_name=creds["AWS_DEFAULT_REGION"],
            aws_access_key_id=session.get("key", creds["AWS_ACCESS_KEY_ID"]),
            aws_secret_access_key=session.get("secret", creds["AWS_SECRET_ACCESS_KEY"]),
            aws_session_token=session.get("token"),
            verify=self.verify,
            config=BotoConfig(retries={"max_attempts": 1}),
        )

    def login_password(self) -> str:
        """What `aws ecr get-login-password` prints for the administrator."""
        if self._password is None:
            data = self.ecr_client().get_authorization_token()["authorizationData"][0]
            token = base64.b64decode(data["authorizationToken"]).decode()
            self._password = token.removeprefix("AWS:")
        return self._password

    def registry_credentials(self) -> tuple[str, str] | None:
        """(username, password) for `/v2/`."""
        return ("AWS", self.login_password())

    def create_repository(self, name: str) -> None:
        """Make `name` ready to be pushed to: CreateRepository, as on ECR."""
        try:
            self.ecr_client().create_repository(repositoryName=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "RepositoryAlreadyExistsException":
                raise

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGOHOLD_", "AWS_"))}
        env["CARGOHOLD_PORT"] = str(self._port)
        env["CARGOHOLD_HOST"] = self._bind_host
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.data_dir.parent / "aws-credentials")
        env["AWS_CONFIG_FILE"] = str(self.data_dir.parent / "aws-config")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def auth(self) -> httpx.BasicAuth | None:
        credentials = self.registry_credentials()
        return None if credentials is None else httpx.BasicAuth(*credentials)

    def client(self, *, timeout: float = 60.0) -> httpx.Client:
        """An HTTP client for `/v2/` with the credentials above."""
        return httpx.Client(
            base_url=self.url, auth=self.auth(), timeout=timeout, verify=self.ssl_context()
        )

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
            *self.extra_args,
        ]
        env = self._env()
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
        def answering() -> bool:
            if self._process is not None and self._process.poll() is not None:
                code = self._process.returncode
                self._close_log()
                raise ServerError(
                    f"the server exited with {code} while starting\n{self.log_tail()}"
                )
            try:
                httpx.get(f"{self.url}/v2/", timeout=1.0, verify=self.ssl_context())
            except httpx.TransportError:
                return False
            return True

        try:
            wait_until(answering, timeout=_READY_TIMEOUT, interval=0.05)
        except NeverHappened:
            self.kill()
            raise ServerError(
                f"the server did not answer within {_READY_TIMEOUT}s\n{self.log_tail()}"
            ) from None

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
