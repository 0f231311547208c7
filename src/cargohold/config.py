"""Configuration: one frozen, typed object built from defaults, a TOML file, CARGOHOLD_*
variables and command-line flags, in rising order of precedence.

Unknown keys, variables and driver names are errors: a typo never falls back silently.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cargohold.eventsconfig import EventsConfig, EventsConfigError, parse_events

STORAGE_DRIVERS = ("filesystem", "s3")


class ConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StorageConfig:
    driver: str = "filesystem"
    #: Root of the filesystem driver; defaults to `<data_dir>/storage`.
    path: str | None = None
    #: The s3 driver's bucket, and the prefix of every key it writes there.
    bucket: str | None = None
    prefix: str = ""
    #: The store's S3 endpoint (AWS S3 when absent), its region, and path-style addressing
    #: (`endpoint/bucket/key`, as MinIO, Ceph RGW and SeaweedFS usually want).
    endpoint_url: str | None = None
    region: str | None = None
    path_style: bool = False
    #: Blob GETs answer 307 to a presigned URL of the store instead of streaming through.
    redirect: bool = True
    #: The store's own credentials; without them, the AWS credential chain (of `profile`).
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 5000
    data_dir: str = "./cargohold-data"
    #: `sqlite:///…` or `postgresql://…`; defaults to `<data_dir>/metadata.db`.
    database_url: str | None = None
    account_id: str = "123456789012"
    region: str = "us-east-1"
    #: The URL clients reach this registry at: repository URIs and `proxyEndpoint` derive from it.
    public_url: str | None = None
    #: Whether a push to a repository that does not exist creates it.
    create_on_push: bool = False
    log_level: str = "info"
    #: "text", or "json": one JSON object per line, and one per request (cargohold.requestlog).
    log_format: str = "text"
    #: A port of its own for Prometheus' `/metrics` (0: none), on this address (cargohold.metrics).
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    #: How often (seconds) the metrics read open uploads, the job queue and each repository's
    #: storage bytes from the database (one process does, in the background).
    metrics_refresh_seconds: float = 60.0
    #: PEM certificate (optionally followed by its chain) and private key: when both are set,
    #: the server speaks HTTPS only. See `cargohold admin tls init`.
    tls_cert: str | None = None
    tls_key: str | None = None
    #: Server processes sharing the port and the store; each runs the whole application.
    workers: int = 1
    #: Upload sessions idle this long (seconds) are removed with the bytes they staged.
    upload_expiry_seconds: int = 86400
    #: Open upload sessions one repository may hold; past it, starting one is refused.
    max_open_uploads: int = 1000
    #: A request body that sends no byte for this long is cut off (408).
    body_idle_timeout_seconds: float = 60.0
    #: ... and one that averages less than this once `body_rate_grace_seconds` were spent
    #: waiting for it (0: no minimum).
    body_min_bytes_per_second: float = 1024.0
    body_rate_grace_seconds: float = 10.0
    #: The master key every node of one registry shares (sealed secrets, token and download
    #: signatures); defaults to `<data_dir>/master.key`, created on first start. When set, the
    #: file must exist: a node never makes up a key of its own that the others do not have.
    master_key_file: str | None = None
    #: How often (seconds) each repository's lifecycle policy runs; ECR: within 24 hours.
    lifecycle_interval_seconds: float = 86400.0
    #: Garbage collection removes blobs no manifest references once nothing used them for this
    #: long (seconds); None: the upload expiry plus an hour.
    gc_grace_seconds: float | None = None
    #: How often garbage collection runs (seconds); 0: only `cargohold gc`.
    gc_interval_seconds: float = 3600.0
    #: How often every stored blob is re-hashed (seconds); 0: only `cargohold scrub`.
    scrub_interval_seconds: float = 0.0
    #: ECR events are kept in the outbox this long (seconds) once every delivery target has
    #: been given them.
    events_retention_seconds: float = 604800.0
    storage: StorageConfig = field(default_factory=StorageConfig)
    #: Webhook targets of ECR events (`[[events.webhooks]]`, cargohold.eventsconfig).
    events: EventsConfig = field(default_factory=EventsConfig)
    #: The AWS profile `serve` and `admin init` write the administrator's key to.
    aws_profile: str = "cargohold"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'metadata.db'}"

    @property
    def master_key_path(self) -> Path:
        if self.master_key_file:
            return Path(self.master_key_file).resolve()
        return self.data_path / "master.key"

    @property
    def storage_path(self) -> Path:
        return (
            Path(self.storage.path).resolve() if self.storage.path else self.data_path / "storage"
        )

    @property
    def resolved_gc_grace(self) -> float:
        if self.gc_grace_seconds is not None:
            return self.gc_grace_seconds
        return self.upload_expiry_seconds + 3600.0

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"{self.scheme}://{self.host}:{self.port}").rstrip("/")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    def webhook_secrets(self) -> dict[str, bytes]:
        """Each webhook target's signing secret, read now; ConfigError when one cannot be."""
        try:
            return {hook.name: hook.read_secret() for hook in self.events.webhooks}
        except EventsConfigError as exc:
            raise ConfigError(str(exc)) from None

    def validate(self) -> Config:
        if not re.fullmatch(r"\d{12}", self.account_id):
            raise ConfigError(f"account_id must be 12 digits, not {self.account_id!r}")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region):
            raise ConfigError(f"region {self.region!r} is not an AWS region name")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is out of range")
        if self.storage.driver not in STORAGE_DRIVERS:
            raise ConfigError(
                f"unknown storage driver {self.storage.driver!r}; "
                f"known: {', '.join(STORAGE_DRIVERS)}"
            )
        self._validate_s3()
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"workers must be between 1 and 64, not {self.workers}")
        if self.upload_expiry_seconds < 1:
            raise ConfigError(
                f"upload_expiry_seconds must be at least 1, not {self.upload_expiry_seconds}"
            )
        if self.max_open_uploads < 1:
            raise ConfigError(f"max_open_uploads must be at least 1, not {self.max_open_uploads}")
        if not 0 < self.body_idle_timeout_seconds <= 86400:
            raise ConfigError("body_idle_timeout_seconds must be more than 0 and at most 86400")
        if self.body_min_bytes_per_second < 0 or self.body_rate_grace_seconds < 0:
            raise ConfigError(
                "body_min_bytes_per_second and body_rate_grace_seconds must not be negative"
            )
        if not 0 < self.lifecycle_interval_seconds <= 366 * 86400:
            raise ConfigError("lifecycle_interval_seconds must be more than 0 and at most a year")
        if self.gc_grace_seconds is not None and self.gc_grace_seconds < 0:
            raise ConfigError("gc_grace_seconds must not be negative")
        if not 0 < self.events_retention_seconds <= 366 * 86400:
            raise ConfigError("events_retention_seconds must be more than 0 and at most a year")
        if self.gc_interval_seconds < 0 or self.scrub_interval_seconds < 0:
            raise ConfigError("gc_interval_seconds and scrub_interval_seconds must not be negative")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key must be set together")
        if not 0 <= self.metrics_port < 65536 or (
            self.metrics_port and self.metrics_port == self.port
        ):
            raise ConfigError(f"metrics_port {self.metrics_port} is out of range or the registry's")
        if not 0 < self.metrics_refresh_seconds <= 86400:
            raise ConfigError("metrics_refresh_seconds must be more than 0 and at most 86400")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, not {self.log_format!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,64}", self.aws_profile):
            raise ConfigError(f"aws_profile {self.aws_profile!r} is not a profile name")
        if self.log_level not in ("critical", "error", "warning", "info", "debug"):
            raise ConfigError(f"unknown log_level {self.log_level!r}")
        return self

    def _validate_s3(self) -> None:
        storage = self.storage
        if storage.driver != "s3":
            return
        if not storage.bucket or not re.fullmatch(
            r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", storage.bucket
        ):
            raise ConfigError(
                f"storage.bucket must name an S3 bucket (3-63 lowercase letters, digits, dots "
                f"and hyphens) with driver s3, not {storage.bucket!r}"
            )
        if storage.endpoint_url is not None and not re.fullmatch(
            r"https?://[^\s/]+(/[^\s]*)?", storage.endpoint_url
        ):
            raise ConfigError(
                f"storage.endpoint_url {storage.endpoint_url!r} is not an http(s) URL"
            )
        if (storage.access_key_id is None) != (storage.secret_access_key is None):
            raise ConfigError(
                "storage.access_key_id and storage.secret_access_key go together: set both, or "
                "neither to use the AWS credential chain"
            )
        if ".." in storage.prefix.split("/") or "\\" in storage.prefix:
            raise ConfigError(f"storage.prefix {storage.prefix!r} is not a key prefix")


def _coerce(name: str, value: Any, target: Any) -> Any:
    if isinstance(target, bool) or name == "create_on_push":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{name} must be a boolean")
    if isinstance(target, float) or name == "gc_grace_seconds":
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, not {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, not {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(f"{name} must be a finite number")
        return number
    if name in ("port", "metrics_port", "workers", "upload_expiry_seconds", "max_open_uploads"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be an integer, not {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


def _apply(config: Config, values: Mapping[str, Any], source: str) -> Config:
    top = {f.name: f for f in fields(Config)}
    storage_names = {f.name for f in fields(StorageConfig)}
    changes: dict[str, Any] = {}
    storage_changes: dict[str, Any] = {}
    for key, value in values.items():
        if key == "events":
            try:
                changes["events"] = parse_events(
                    changes.get("events", config.events), value, source
                )
            except EventsConfigError as exc:
                raise ConfigError(str(exc)) from None
        elif key == "storage":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [storage] must be a table")
            for skey, svalue in value.items():
                if skey not in storage_names:
                    raise ConfigError(f"{source}: unknown key storage.{skey}")
                storage_changes[skey] = _coerce(
                    f"storage.{skey}", svalue, getattr(config.storage, skey)
                )
        elif key in top:
            changes[key] = _coerce(key, value, getattr(config, key))
        else:
            raise ConfigError(f"{source}: unknown key {key!r}")
    if storage_changes:
        changes["storage"] = replace(config.storage, **storage_changes)
    return replace(config, **changes)


_TOP_LEVEL = frozenset(f.name for f in fields(Config))


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("CARGOHOLD_"):
            continue
        key = name.removeprefix("CARGOHOLD_").lower()
        if key in ("config", "resolved_config"):
            continue
        if key.startswith("storage_"):
            values.setdefault("storage", {})[key.removeprefix("storage_")] = value
        elif key.startswith("events_") and key not in _TOP_LEVEL:
            values.setdefault("events", {})[key.removeprefix("events_")] = value
        else:
            values[key] = value
    return values


def load(
    *,
    config_file: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    environ = os.environ if environ is None else environ
    config = Config()
    config_file = config_file or environ.get("CARGOHOLD_CONFIG")
    if config_file:
        try:
            with open(config_file, "rb") as handle:
                document = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: {exc}") from None
        config = _apply(config, document, config_file)
    config = _apply(config, _from_environment(environ), "environment")
    if overrides:
        config = _apply(config, {k: v for k, v in overrides.items() if v is not None}, "flags")
    return config.validate()


#: Where `serve` hands the resolved configuration to its worker processes.
RESOLVED_CONFIG_VARIABLE = "CARGOHOLD_RESOLVED_CONFIG"


def to_json(config: Config) -> str:
    return json.dumps(asdict(config))


def from_json(text: str) -> Config:
    values = json.loads(text)
    storage = StorageConfig(**values.pop("storage"))
    events = EventsConfig.from_dict(values.pop("events"))
    return Config(storage=storage, events=events, **values).validate()
