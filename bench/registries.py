"""The two registries under test, started by hand on free loopback ports.

CNCF Distribution runs from Debian's ``docker-registry`` binary with a config file written here;
cargohold runs from this checkout's venv. Both keep their data under one work directory, so both
write to the same disk. Each ``Registry`` knows how to start, wait for, authenticate to and stop
its server; nothing here measures anything.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0

# Never send benchmark traffic through a proxy: everything goes to 127.0.0.1.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def v2_status(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status of ``GET {url}/v2/``, or None when nothing answers."""
    try:
        with _NO_PROXY.open(f"{url}/v2/", timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return None


@dataclass
class Registry:
    """A registry process on 127.0.0.1:port; subclasses say how to start one."""

    name: str
    data_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    credentials: tuple[str, str] | None = None
    auth: str = "none"  # how /v2/ requests authenticate, for the report

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """The server's environment: this process's, less what would change the server."""
        return dict(os.environ)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() can reach its children
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while v2_status(self.url) is None:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} before answering /v2/:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer /v2/ in {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.1)
        self.credentials = self.login()

    def login(self) -> tuple[str, str] | None:
        """(user, password) for Basic auth on /v2/, or None when /v2/ is open."""
        return None

    def prepare_repository(self, name: str) -> None:
        """Make ``name`` pushable. Distribution creates repositories on first push."""

    def check_alive(self, during: str) -> None:
        """Raise if the server exited: a dead server must stop the run, not skew it."""
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running ({during})")
        code = self.process.poll()
        if code is not None:
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"
            raise RuntimeError(f"{self.name} exited with {how} during {during}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the process group we started if it does not go."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 15, width: int = 400) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(line[:width] for line in text.splitlines()[-lines:])

    def auth_header(self) -> str | None:
        if self.credentials is None:
            return None
        user, password = self.credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def skopeo_creds(self) -> str | None:
        return None if self.credentials is None else ":".join(self.credentials)


DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
"""


@dataclass
class Distribution(Registry):
    """CNCF Distribution 2.8 from Debian's ``docker-registry``: filesystem, no auth, warn logs."""

    config_path: Path | None = None

    def command(self) -> list[str]:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry not found: apt-get install -y docker-registry")
        self.config_path = self.data_dir.parent / "distribution.yml"
        self.config_path.write_text(
            DISTRIBUTION_CONFIG.format(
                root=self.data_dir, port=self.port, secret=base64.b32encode(os.urandom(20)).decode()
            )
        )
        return [binary, "serve", str(self.config_path)]

    def environment(self) -> dict[str, str]:
        # Distribution reads REGISTRY_* variables as configuration (REGISTRY_AUTH…): one exported
        # for podman (REGISTRY_AUTH_FILE) would change, or break, the peer being measured.
        return {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}


@dataclass
class Cargohold(Registry):
    """cargohold from this checkout, started exactly as its README says."""

    ecr: Any = None  # a boto3 ECR client once /v2/ requires authentication

    def environment(self) -> dict[str, str]:
        # Its administrator's AWS profile goes to files of the run, never the user's ~/.aws.
        # CARGOHOLD_* settings (CARGOHOLD_WORKERS) go through: they are part of what is measured.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.data_dir.parent / "aws-credentials")
        env["AWS_CONFIG_FILE"] = str(self.data_dir.parent / "aws-config")
        return env

    def command(self) -> list[str]:
        script = Path(sys.executable).with_name("cargohold")
        launcher = [str(script)] if script.exists() else [sys.executable, "-m", "cargohold"]
        return [
            *launcher,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]

    def login(self) -> tuple[str, str] | None:
        credentials = cargohold_credentials(self.data_dir, self.url)
        if credentials is not None:
            self.auth = "Basic, password from `cargohold admin login-password`"
            if _ecr_api_served(self.url):
                self.auth = "Basic, token from ECR GetAuthorizationToken"
                self.ecr = _ecr_client(_cargohold_admin(self.data_dir, "credentials"), self.url)
        return credentials

    def prepare_repository(self, name: str) -> None:
        # ---- HOOK: ECR semantics (a repository must exist before a push) ----------------------
        # While cargohold's ECR API is not served, repositories appear on first push and this
        # does nothing. Once it is (login() made an ECR client), create the repository through
        # the ECR API first, exactly as `aws ecr create-repository` would.
        if self.ecr is None:
            return
        with contextlib.suppress(self.ecr.exceptions.RepositoryAlreadyExistsException):
            self.ecr.create_repository(repositoryName=name)


# ---- HOOK: credentials for cargohold -------------------------------------------------------------
# While cargohold's /v2/ is open (GET /v2/ answers 200) this returns None and the harness sends no
# Authorization header. When /v2/ answers 401, the harness does what a user does:
#   1. `cargohold admin credentials --data-dir DIR` prints `export AWS_ACCESS_KEY_ID=…` lines;
#   2. boto3 `ecr.get_authorization_token()` with those keys, at the server's own URL;
#   3. the token decodes to "AWS:<password>": `Authorization: Basic base64("AWS:"+password)`.
# Until the ECR API is routed (POST / answers 404), `cargohold admin login-password` gives the same
# password, as `aws ecr get-login-password` would.
def cargohold_credentials(data_dir: Path, url: str) -> tuple[str, str] | None:
    """(user, password) for cargohold's /v2/, or None while /v2/ needs no authentication."""
    if v2_status(url) != 401:
        return None
    if not _ecr_api_served(url):
        return "AWS", _cargohold_admin_output(data_dir, "login-password").strip()
    ecr = _ecr_client(_cargohold_admin(data_dir, "credentials"), url)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    return user, password


def _ecr_api_served(url: str) -> bool:
    """Whether ``POST /`` is the ECR API (an unsigned call is refused, but not with 404)."""
    request = urllib.request.Request(
        f"{url}/",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
        },
    )
    try:
        with _NO_PROXY.open(request, timeout=10):
            return True
    except urllib.error.HTTPError as e:
        return e.code != 404


def _cargohold_admin_output(data_dir: Path, command: str) -> str:
    script = Path(sys.executable).with_name("cargohold")
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "cargohold"]
    return subprocess.run(
        [*launcher, "admin", command, "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def _cargohold_admin(data_dir: Path, command: str) -> dict[str, str]:
    """The variables `cargohold admin COMMAND` prints as `export NAME=value` lines."""
    env: dict[str, str] = {}
    for word in _cargohold_admin_output(data_dir, command).split():
        name, sep, value = word.partition("=")
        if sep and name.isupper():
            env[name] = value.strip("'\"")
    return env


def _ecr_client(env: dict[str, str], url: str) -> Any:
    """An ECR client for the server at ``url``.

    The printed AWS_ENDPOINT_URL_ECR comes from cargohold's configuration, which does not know the
    --port this harness gave `serve`, so the server's own URL wins.
    """
    import boto3  # only needed once cargohold requires authentication

    return boto3.client(
        "ecr",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        endpoint_url=url,
    )
