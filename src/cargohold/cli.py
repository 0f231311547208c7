"""The `cargohold` command line: `serve`, and the administration commands."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from cargohold import (
    admin,
    audit_cli,
    gc_cli,
    kubelet_provider,
    lifecycle_cli,
    metrics,
    requestlog,
    scan_cli,
    scrub_cli,
    serving,
    tls_serving,
)
from cargohold.agent import cli as agent_cli
from cargohold.config import RESOLVED_CONFIG_VARIABLE, Config, ConfigError, load, to_json


def _common(parser: argparse.ArgumentParser, *, default: object = None) -> None:
    parser.add_argument("--config", default=default, help="TOML configuration file")
    parser.add_argument(
        "--data-dir",
        default=default,
        help="where metadata and blobs live (default ./cargohold-data)",
    )


def _load(args: argparse.Namespace, **overrides: object) -> Config:
    return load(config_file=args.config, overrides={"data_dir": args.data_dir, **overrides})


def _serve(args: argparse.Namespace) -> int:
    # What the server creates (database, blobs, uploads, keys) is its user's only; the storage
    # driver and the database set those modes themselves too.
    os.umask(0o077)
    config = _load(args, host=args.host, port=args.port, workers=args.workers)
    requestlog.configure_logging(config.log_level, config.log_format)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        admin.first_start(config, profile=None if args.no_aws_profile else admin.DEFAULT_PROFILE)
    except admin.AdminError as exc:
        print(f"cargohold: {exc}", file=sys.stderr)
        return 1
    print(
        f"cargohold serving {config.scheme}://{config.host}:{config.port} "
        f"(data in {config.data_path})",
        flush=True,
    )
    return _run_server(config)


def _application(config: Config) -> tuple[Any, dict[str, Any]]:
    """The application (or, for worker processes, its factory's name) and uvicorn's options."""
    from cargohold.app import build_app
    from cargohold.http.connections import MAX_REQUEST_HEAD, bounded_head_protocol

    options: dict[str, Any] = {
        # Request heads are bounded in size and time by the protocol, bodies by the application
        # (cargohold.http.connections, cargohold.http.bodies); idle connections close after 5 s.
        "http": bounded_head_protocol(config.body_idle_timeout_seconds),
        "h11_max_incomplete_event_size": MAX_REQUEST_HEAD,
        "timeout_keep_alive": 5,
    }
    if config.workers > 1:
        # Worker processes import the application by name and read the resolved configuration.
        os.environ[RESOLVED_CONFIG_VARIABLE] = to_json(config)
        app: Any = (
            "cargohold.requestlog:app_from_environment"
            if config.log_format == "json" or config.metrics_port
            else "cargohold.app:app_from_environment"
        )
        options.update(factory=True, workers=config.workers)
    else:
        app = requestlog.wrap(metrics.wrap(build_app(config), config), config.log_format)
    if config.log_format == "json":
        options["log_config"] = None  # uvicorn's records go through the JSON handler too
    return app, options


def _run_server(config: Config) -> int:
    """Bind the port, record the URL in the data directory (for `admin credentials`), serve
    until stopped, and remove the record again."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    metrics.prepare(config)
    app, options = _application(config)
    tls = tls_serving.configure(config, options)
    settings = uvicorn.Config(
        app,
        **options,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=config.log_level == "debug",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    server = uvicorn.Server(settings)
    sock = settings.bind_socket()  # exits, saying why, when the port is taken
    record = serving.write_record(config)
    scrapes = metrics.serve_metrics(config)
    # uvicorn stops gracefully on SIGTERM, then raises it again to end the process; that second
    # SIGTERM lands here, so the record is removed before the process ends by the signal.
    previous = signal.signal(signal.SIGTERM, _terminated)
    if tls is not None and config.workers == 1:
        tls_serving.reload_on_sighup(tls)
    stopped_by: int | None = None
    try:
        if config.workers > 1:
            Multiprocess(settings, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    except _Terminated:
        stopped_by = signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
        serving.remove_record(config, record)
        metrics.stop(scrapes)
        sock.close()
    if stopped_by is not None:
        signal.raise_signal(stopped_by)
    return 0 if config.workers > 1 or server.started else 1


class _Terminated(Exception):
    """SIGTERM, when uvicorn is not handling it."""


def _terminated(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cargohold", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the registry")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 5000)")
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    serve.add_argument(
        "--no-aws-profile",
        action="store_true",
        help="on first start, do not save the administrator's key as AWS profile [cargohold]",
    )
    serve.set_defaults(func=_serve)
    admin.add_parser(commands, _common, _load)
    scan_cli.add_parsers(commands, _common, _load)
    audit_cli.add_parser(commands, _common, _load)
    lifecycle_cli.add_parser(commands, _common, _load)
    gc_cli.add_parser(commands, _common, _load)
    scrub_cli.add_parser(commands, _common, _load)
    agent_cli.add_parser(commands, _common, _load)
    kubelet_provider.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        print(f"cargohold: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
