"""The `[events]` table of the configuration: the webhook targets ECR events are delivered to.

    [events]
    retry_max_seconds = 60            # the longest wait between two attempts at one event

    [[events.webhooks]]
    name = "ci"                       # letters, digits, `.`, `_`, `-`: names its delivery cursor
    url = "https://ci.example.com/hooks/ecr"
    pattern = { source = ["aws.ecr"], detail-type = ["ECR Image Action"] }   # or JSON text
    secret_file = "/etc/cargohold/ci-hook.secret"   # or secret_env = "CI_HOOK_SECRET"
    timeout = 10                      # seconds per request

`CARGOHOLD_EVENTS_WEBHOOKS` (a JSON array of such tables) and
`CARGOHOLD_EVENTS_RETRY_MAX_SECONDS` set the same. The secret is never part of the
configuration itself: the file or variable is read when the server starts.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cargohold.domain.eventpattern import EventPattern, PatternError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WEBHOOK_KEYS = ("name", "url", "pattern", "secret_file", "secret_env", "timeout")


class EventsConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    name: str
    url: str
    #: The event pattern as JSON text; None: every event.
    pattern: str | None = None
    #: Where the signing secret is: a file (its content, without a trailing newline), or an
    #: environment variable of the server's.
    secret_file: str | None = None
    secret_env: str | None = None
    #: Seconds one delivery request may take.
    timeout: float = 10.0

    def event_pattern(self) -> EventPattern | None:
        return None if self.pattern is None else EventPattern.parse(self.pattern)

    def read_secret(self, environ: Mapping[str, str] | None = None) -> bytes:
        """The signing secret; EventsConfigError when it cannot be read or is empty."""
        environ = os.environ if environ is None else environ
        where = f"events.webhooks {self.name!r}"
        if self.secret_file is not None:
            try:
                secret = Path(self.secret_file).read_bytes().rstrip(b"\r\n")
            except OSError as exc:
                raise EventsConfigError(
                    f"{where}: cannot read secret_file {self.secret_file}: {exc.strerror}"
                ) from None
        else:
            value = environ.get(self.secret_env or "")
            if value is None:
                raise EventsConfigError(f"{where}: the variable {self.secret_env} is not set")
            secret = value.encode()
        if not secret:
            raise EventsConfigError(f"{where}: the signing secret is empty")
        return secret


@dataclass(frozen=True, slots=True)
class EventsConfig:
    webhooks: tuple[WebhookConfig, ...] = ()
    #: The longest wait (seconds) between two attempts at delivering one event.
    retry_max_seconds: float = 60.0

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EventsConfig:
        """From `asdict` output (how `serve` hands the configuration to its workers)."""
        hooks = tuple(WebhookConfig(**hook) for hook in values.get("webhooks", ()))
        return cls(hooks, float(values.get("retry_max_seconds", 60.0)))


def parse_events(current: EventsConfig, value: Any, source: str) -> EventsConfig:
    """`current` with the `[events]` table `value` (from a file, or the variables) applied."""
    if not isinstance(value, dict):
        raise EventsConfigError(f"{source}: [events] must be a table")
    retry = current.retry_max_seconds
    hooks = current.webhooks
    for key, item in value.items():
        if key == "retry_max_seconds":
            retry = _number(f"{source}: events.retry_max_seconds", item)
            if not 0 < retry <= 86400:
                raise EventsConfigError(
                    f"{source}: events.retry_max_seconds must be more than 0 and at most 86400"
                )
        elif key == "webhooks":
            hooks = _webhooks(item, source)
        else:
            raise EventsConfigError(f"{source}: unknown key events.{key}")
    return EventsConfig(hooks, retry)


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool):
        raise EventsConfigError(f"{where} must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EventsConfigError(f"{where} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise EventsConfigError(f"{where} must be a finite number")
    return number


def _webhooks(value: Any, source: str) -> tuple[WebhookConfig, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise EventsConfigError(f"{source}: events.webhooks is not JSON: {exc}") from None
    if not isinstance(value, list):
        raise EventsConfigError(f"{source}: events.webhooks must be an array of tables")
    hooks = tuple(_webhook(item, f"{source}: events.webhooks[{i}]") for i, item in enumerate(value))
    names = [hook.name for hook in hooks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise EventsConfigError(f"{source}: webhook names must differ: {', '.join(duplicates)}")
    return hooks


def _webhook(value: Any, where: str) -> WebhookConfig:
    if not isinstance(value, dict):
        raise EventsConfigError(f"{where} must be a table")
    unknown = sorted(set(value) - set(_WEBHOOK_KEYS))
    if unknown:
        raise EventsConfigError(f"{where}: unknown key {unknown[0]!r}")
    name = value.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise EventsConfigError(
            f"{where}: name must be 1-64 letters, digits, '.', '_' or '-', not {name!r}"
        )
    where = f"{where} ({name})"
    url = value.get("url")
    if not isinstance(url, str) or not _is_http_url(url):
        raise EventsConfigError(f"{where}: url must be an http:// or https:// URL, not {url!r}")
    pattern = _pattern(where, value.get("pattern"))
    secret_file, secret_env = value.get("secret_file"), value.get("secret_env")
    if (secret_file is None) == (secret_env is None):
        raise EventsConfigError(
            f"{where}: give the signing secret as exactly one of secret_file and secret_env"
        )
    if secret_file is not None and (not isinstance(secret_file, str) or not secret_file):
        raise EventsConfigError(f"{where}: secret_file must be a path")
    if secret_env is not None and (
        not isinstance(secret_env, str) or not _ENV_NAME.fullmatch(secret_env)
    ):
        raise EventsConfigError(f"{where}: secret_env must name an environment variable")
    timeout = _number(f"{where}: timeout", value.get("timeout", 10.0))
    if not 0 < timeout <= 300:
        raise EventsConfigError(f"{where}: timeout must be more than 0 and at most 300 seconds")
    return WebhookConfig(name, url, pattern, secret_file, secret_env, timeout)


def _pattern(where: str, value: Any) -> str | None:
    """The pattern, validated, as canonical JSON text."""
    if value is None:
        return None
    try:
        return json.dumps(EventPattern.parse(value).document, sort_keys=True)
    except PatternError as exc:
        raise EventsConfigError(f"{where}: pattern: {exc}") from None


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not any(c.isspace() for c in url)
        and not parts.username
        and not parts.password
    )
