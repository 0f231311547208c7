"""The `cargohold` command line: `serve`, and the administration commands."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cargohold import (
    admin,
    admin_cli,
    audit_cli,
    datastate,
    events_cli,
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
from cargohold.commandline import subcommands
from cargohold.config import RESOLVED_CONFIG_VARIABLE, Config, ConfigError, load, to_json


def _common(parser: argparse.ArgumentParser, *, default: object = None) -> None:
    parser.add_argument(
        "--config",
        default=default,
        metavar="FILE",
        help="TOML configuration file (default: $CARGOHOLD_CONFIG, else the one the running "
        "server of the data directory was started with, else none)",
    )
    parser.add_argument(
        "--data-dir",
        default=default,
        metavar="DIR",
        help="where metadata and blobs live (default: data_dir of the configuration, "
        "./cargohold-data)",
    )


def _config_file(args: argparse.Namespace) -> str | None:
    given: str | None = getattr(args, "config", None) or os.environ.get("CARGOHOLD_CONFIG")
    return given or None


def _load(args: argparse.Namespace, **overrides: object) -> Config:
    return load(
        config_file=getattr(args, "config", None),
        overrides={"data_dir": getattr(args, "data_dir", None), **overrides},
    )


def _load_registry(args: argparse.Namespace) -> Config:
    """`_load_existing`, for a command that opens the registry's database and storage: it
    refuses (`MissingState`) to go on where no registry exists rather than create one."""
    config = _load_existing(args)
    datastate.require_existing(config, master_key=False)
    return config


def _load_existing(args: argparse.Namespace) -> Config:
    """The configuration of a command that works on an existing registry: as given, and when
    no configuration file is given, the one its running server was started with (recorded in
    the data directory), so that its database, account and region are the server's."""
    config = _load(args)
    if _config_file(args) is None:
        record = serving.read_record(config)
        if record is not None and record.config_file and Path(record.config_file).is_file():
            config = load(
                config_file=record.config_file,
                overrides={"data_dir": getattr(args, "data_dir", None) or str(config.data_path)},
            )
    return config


def _serve(args: argparse.Namespace) -> int:
    # What the server creates (database, blobs, uploads, keys) is its user's only; the storage
    # driver and the database set those modes themselves too.
    os.umask(0o077)
    config = _load(args, host=args.host, port=args.port, workers=args.workers)
    config.webhook_secrets()  # a target whose secret cannot be read stops it here
    requestlog.configure_logging(config.log_level, config.log_format)
    problem = _storage_problem(config)
    if problem is not None:
        print(
            f"cargohold: cannot use the {config.storage.driver} storage: {problem}", file=sys.stderr
        )
        return 1
    given = _config_file(args)
    config_file = None if given is None else str(Path(given).resolve())

    def bound() -> None:
        # Only once the port is ours: a server that cannot listen leaves no profile behind.
        admin.first_start(config, aws_profile=not args.no_aws_profile, config_file=config_file)
        public = f", public URL {config.public_url}" if config.public_url else ""
        print(
            f"cargohold serving {config.scheme}://{config.host}:{config.port} "
            f"(data in {config.data_path}{public})",
            flush=True,
        )

    return _run_server(config, bound, config_file=config_file)


def _storage_problem(config: Config) -> str | None:
    """Why the configured object store cannot serve (credentials, bucket, reachability), if
    so. The filesystem driver is not probed: that would create its directories before the
    port is bound."""
    if config.storage.driver == "filesystem":
        return None
    import asyncio

    from cargohold.app import build_storage
    from cargohold.ports import StorageError

    try:
        asyncio.run(build_storage(config).check())
    except StorageError as exc:
        return str(exc)
    return None


def _uvicorn_settings(config: Config) -> Any:
    """uvicorn's configuration for `config`: the application (or, with several workers, its
    factory's name), the bounded protocol, and the server's options."""
    import uvicorn

    from cargohold.app import build_app
    from cargohold.http.connections import MAX_REQUEST_HEAD, bounded_head_protocol

    metrics.prepare(config)  # before any process counts

    options: dict[str, Any] = {
        # Request heads are bounded in size and time by the protocol, bodies by the application
        # (cargohold.http.connections, cargohold.http.bodies); idle connections close after 5 s.
        "http": bounded_head_protocol(config.body_idle_timeout_seconds),
        "h11_max_incomplete_event_size": MAX_REQUEST_HEAD,
        "timeout_keep_alive": 5,
    }
    if config.workers > 1:
        # Worker processes import the application by name and read the resolved configuration;
        # each configures its logging as this process did (else their INFO records are lost).
        os.environ[RESOLVED_CONFIG_VARIABLE] = to_json(config)
        app: Any = "cargohold.requestlog:app_from_environment"
        options.update(factory=True, workers=config.workers)
    else:
        app = requestlog.wrap(metrics.wrap(build_app(config), config), config.log_format)
    if config.log_format == "json":
        options["log_config"] = None  # uvicorn's records go through the JSON handler too
    tls_serving.configure(config, options)
    return uvicorn.Config(
        app,
        **options,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=config.log_level == "debug",
        timeout_graceful_shutdown=10,
        server_header=False,
    )


def _run_server(
    config: Config, bound: Callable[[], None], *, config_file: str | None = None
) -> int:
    """Bind the port, record the URL in the data directory (for `admin credentials`), run
    `bound` (the administrator, the AWS profile, the banner), serve until stopped, and remove
    the record again. Exits 0 when stopped by SIGTERM or SIGINT, with one worker or several."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    settings = _uvicorn_settings(config)
    server = uvicorn.Server(settings)
    sock = settings.bind_socket()  # exits, saying why, when the port is taken
    record = serving.write_record(config, config_file=config_file)
    scrapes = metrics.serve_metrics(config)
    try:
        bound()
    except admin.AdminError as exc:
        metrics.stop(scrapes)
        serving.remove_record(config, record)
        sock.close()
        print(f"cargohold: {exc}", file=sys.stderr)
        return 1
    # uvicorn stops gracefully on SIGTERM, then raises it again to end the process; that second
    # SIGTERM lands here, so the record is removed before the process ends by the signal.
    previous = signal.signal(signal.SIGTERM, _terminated)
    if config.workers == 1:
        tls_serving.reload_on_sighup(config)
    stopped_by: int | None = None  # set when uvicorn re-raised the signal it handled
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
        return 0  # uvicorn re-raised the SIGTERM it handled: the shutdown was clean
    return 0 if config.workers > 1 or server.started else 1


class _Terminated(Exception):
    """SIGTERM, when uvicorn is not handling it."""


def _terminated(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cargohold",
        description="A private container registry that speaks Amazon ECR and the OCI "
        "Distribution API. Settings come from a TOML file (--config), CARGOHOLD_* variables "
        "and flags, in rising order of precedence.",
    )
    commands = subcommands(parser, "command")
    serve = commands.add_parser(
        "serve",
        help="run the registry",
        description="Run the registry. On its first start it creates the administrator and "
        "saves its key as an AWS profile; it records its URL in the data directory.",
    )
    _common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 5000)")
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    serve.add_argument(
        "--no-aws-profile",
        action="store_true",
        help="do not write or update the administrator's AWS profile (default: write it on the "
        "first start as aws_profile, [cargohold], and keep it pointed at this server)",
    )
    serve.set_defaults(func=_serve)
    admin_cli.add_parser(commands, _common, _load_existing)
    scan_cli.add_parsers(commands, _common, _load_existing)
    audit_cli.add_parser(commands, _common, _load_existing)
    lifecycle_cli.add_parser(commands, _common, _load_registry)
    gc_cli.add_parser(commands, _common, _load_registry)
    events_cli.add_parser(commands, _common, _load_registry)
    scrub_cli.add_parser(commands, _common, _load_registry)
    agent_cli.add_parser(commands, _common, _load_existing)
    kubelet_provider.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        sys.stdout.flush()
    except ConfigError as exc:
        print(f"cargohold: {exc}", file=sys.stderr)
        return 2
    except datastate.MissingState as exc:
        print(f"cargohold: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`… | head -1`): stop quietly, as a pipe's writer does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE
    return result


if __name__ == "__main__":
    sys.exit(main())
