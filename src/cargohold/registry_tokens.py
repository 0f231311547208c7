"""Registry tokens for clients that pull: the standard AWS credential chain (environment,
profile, role) turned into the `AWS:<token>` login ECR's GetAuthorizationToken gives, cached
until shortly before it expires, as Amazon's ECR credential helper does.

Which registry endpoint answers for a host: `AWS_ENDPOINT_URL_ECR`, else `AWS_ENDPOINT_URL`,
else the host itself (its API is served on the same address as `/v2/`), over `https://`
unless the host is a loopback or `localhost` address. The cache is one file per endpoint and
access key under `$XDG_CACHE_HOME/cargohold` (default `~/.cache/cargohold`), readable by its
user only, as Docker keeps logins in its own config file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

#: A cached token is used until this long before it expires.
REFRESH_BEFORE = 15 * 60
USERNAME = "AWS"


class TokenError(Exception):
    pass


@dataclass(frozen=True)
class RegistryToken:
    username: str
    password: str
    expires_at: float


def server_host(server_url: str) -> str:
    """`host[:port]` of a server URL as docker and podman pass it (`https://h/`, `h:5000`)."""
    text = server_url.strip()
    if "://" not in text:
        text = "//" + text
    return urlsplit(text).netloc or server_url.strip()


def _loopback(host: str) -> bool:
    name = urlsplit("//" + host).hostname or ""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def endpoint_for(host: str) -> str:
    explicit = os.environ.get("AWS_ENDPOINT_URL_ECR") or os.environ.get("AWS_ENDPOINT_URL")
    if explicit:
        return explicit.rstrip("/")
    return ("http://" if _loopback(host) else "https://") + host


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cargohold" / "registry-tokens"


class RegistryTokens:
    def __init__(self, session: boto3.Session | None = None, cache: Path | None = None) -> None:
        self._session = session or boto3.Session()
        self._cache = cache or _cache_dir()

    def _cache_file(self, endpoint: str) -> Path:
        credentials = self._session.get_credentials()
        if credentials is None:
            raise TokenError("no AWS credentials found (environment, profile or role)")
        key = credentials.get_frozen_credentials().access_key
        name = hashlib.sha256(f"{endpoint}\n{key}".encode()).hexdigest()
        return self._cache / f"{name}.json"

    def token(self, host: str) -> RegistryToken:
        endpoint = endpoint_for(host)
        path = self._cache_file(endpoint)
        cached = _read(path)
        if cached is not None and cached.expires_at - time.time() > REFRESH_BEFORE:
            return cached
        found = self._fetch(endpoint)
        _write(path, found, host)
        return found

    def cached_hosts(self) -> list[str]:
        """The hosts a token is cached for, whoever's it is."""
        hosts = []
        for path in sorted(self._cache.glob("*.json")) if self._cache.is_dir() else []:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                host = json.loads(path.read_text()).get("host")
                if isinstance(host, str):
                    hosts.append(host)
        return sorted(set(hosts))

    def forget(self, host: str) -> None:
        self._cache_file(endpoint_for(host)).unlink(missing_ok=True)

    def _fetch(self, endpoint: str) -> RegistryToken:
        region = self._session.region_name or "us-east-1"
        ecr: Any = self._session.client("ecr", endpoint_url=endpoint, region_name=region)
        try:
            data = ecr.get_authorization_token()["authorizationData"][0]
        except Exception as exc:  # botocore's errors, and connection failures
            raise TokenError(f"GetAuthorizationToken at {endpoint}: {exc}") from None
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        return RegistryToken(username, password, data["expiresAt"].timestamp())


def _read(path: Path) -> RegistryToken | None:
    try:
        document = json.loads(path.read_text())
        return RegistryToken(document["username"], document["password"], document["expires_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(path: Path, token: RegistryToken, host: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = {
        "username": token.username,
        "password": token.password,
        "expires_at": token.expires_at,
        "host": host,
    }
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as out:
        os.fchmod(out.fileno(), 0o600)
        json.dump(document, out)
    Path(out.name).replace(path)
