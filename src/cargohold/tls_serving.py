"""How `serve` speaks HTTPS when `tls_cert` and `tls_key` are configured.

The certificate is reloaded on SIGHUP, and no connection in flight is dropped:

- with one process, the files are loaded again into a new TLS context that new connections use,
  while open connections (an upload in progress among them) carry on with the one they have;
- with `--workers N`, uvicorn's supervisor answers SIGHUP by starting a new worker (which loads
  the files) before it stops each old one gracefully, letting its requests finish.

A certificate that cannot be loaded is logged and the previous one stays in use.
"""

from __future__ import annotations

import signal
import ssl
from typing import Any

from cargohold.config import Config, ConfigError
from cargohold.http.tls import TlsFiles, tls_protocol


def configure(config: Config, options: dict[str, Any]) -> TlsFiles | None:
    """Put the TLS protocol in front of `options["http"]` when TLS is configured; the
    certificate is loaded here once, so a bad one stops `serve` before it listens."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    files = TlsFiles(config.tls_cert, config.tls_key)
    try:
        files.context()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load tls_cert {files.cert} and tls_key {files.key}: {exc}"
        ) from None
    # uvloop starts reading a connection even when its protocol paused it in connection_made,
    # so the first bytes could not be looked at before the handshake: asyncio's loop runs TLS.
    options["loop"] = "asyncio"
    options["http"] = tls_protocol(options["http"], files, config.body_idle_timeout_seconds)
    return files


def reload_on_sighup(config: Config) -> None:
    """With one process: SIGHUP loads the configured certificate again (see above)."""
    if config.tls_cert is None or config.tls_key is None:
        return
    files = TlsFiles(config.tls_cert, config.tls_key)
    signal.signal(signal.SIGHUP, lambda signum, frame: files.reload())
