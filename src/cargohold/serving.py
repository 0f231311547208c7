"""Where the running server serves, recorded in its data directory.

`serve` writes `server.json` (0600) once its port is bound and removes it when it stops cleanly:
the URL clients use (the configured `public_url`, else `http://host:port`), the server's process
id and host name, and when it started. `cargohold admin credentials` and `admin init` print
that URL, so scripts reach the server on the port it was started with rather than on the
configuration's default; `client_endpoint` says plainly when it can only assume.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cargohold.config import Config
from cargohold.privatefiles import create_private_file, make_private_dirs

RECORD_FILE = "server.json"

#: How long `answers` waits for a TCP connection to the recorded URL.
PROBE_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class ServerRecord:
    url: str
    pid: int
    hostname: str
    started_at: float
    #: The configuration file the server was started with (absolute), if any: the admin
    #: commands read it too when they are given none.
    config_file: str | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The URL to give clients, and, when it may be wrong, why (for standard error)."""

    url: str
    warning: str | None = None


def record_path(config: Config) -> Path:
    return config.data_path / RECORD_FILE


def write_record(
    config: Config, clock: Callable[[], float] = time.time, *, config_file: str | None = None
) -> ServerRecord:
    """Record that this process serves `config.resolved_public_url`, started with
    `config_file` (atomically replacing any earlier record)."""
    record = ServerRecord(
        config.resolved_public_url,
        os.getpid(),
        socket.gethostname(),
        clock(),
        None if config_file is None else str(Path(config_file).resolve()),
    )
    path = record_path(config)
    make_private_dirs(path.parent)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with os.fdopen(create_private_file(staging), "w") as handle:
            json.dump(asdict(record), handle)
            handle.write("\n")
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return record


def read_record(config: Config) -> ServerRecord | None:
    """The recorded server, or None when there is no record or it cannot be read."""
    try:
        values = json.loads(record_path(config).read_text())
        record = ServerRecord(
            url=str(values["url"]),
            pid=int(values["pid"]),
            hostname=str(values["hostname"]),
            started_at=float(values["started_at"]),
            config_file=None if values.get("config_file") is None else str(values["config_file"]),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return record


def remove_record(config: Config, record: ServerRecord) -> None:
    """Remove the record if it is still `record` (a server started since keeps its own)."""
    if read_record(config) == record:
        with contextlib.suppress(FileNotFoundError):
            record_path(config).unlink()


def answers(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether anything accepts a TCP connection at `url`'s host and port."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _process_gone(record: ServerRecord) -> bool:
    if record.hostname != socket.gethostname():
        return False  # another machine's process: only the probe can tell
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def client_endpoint(config: Config) -> Endpoint:
    """The URL a client of this data directory's server should use: the running server's
    recorded URL; else the configured `public_url`; else the configured host and port, with a
    warning that no server said so."""
    path = record_path(config)
    record = read_record(config)
    if record is not None:
        if _process_gone(record):
            return Endpoint(
                record.url,
                f"the server that recorded {record.url} in {path} (process {record.pid}) "
                "is no longer running; using that URL anyway",
            )
        if not answers(record.url):
            return Endpoint(
                record.url,
                f"nothing answers at {record.url}, which the server recorded in {path}; "
                "using that URL anyway",
            )
        return Endpoint(record.url)
    if config.public_url:
        return Endpoint(config.resolved_public_url)
    return Endpoint(
        config.resolved_public_url,
        f"no running server has recorded its URL in {path}, so the endpoint cannot be known; "
        f"assuming {config.resolved_public_url} (the configured host and port)",
    )
