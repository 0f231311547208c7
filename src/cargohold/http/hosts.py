"""Which account's registry a host name stands for.

ECR gives every account a registry host of its own, `<account>.dkr.ecr.<region>.amazonaws.com`.
Here one server holds several accounts: a host whose first label is a twelve-digit account id
addresses that account's registry (`210987654321.registry.example.com`, or on one machine
`210987654321.localhost:5000`); any other host (`127.0.0.1:5000`, `registry.example.com`)
addresses the registry of the account the caller belongs to, which on a server of one account
is the only one. Repository URIs name the server's own account by the plain host, and every
other account by its prefixed host.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from urllib.parse import urlsplit

_ACCOUNT = re.compile(r"\d{12}", re.ASCII)


def registry_host(public_url: str) -> str:
    """`host[:port]` of the URL clients reach the registry at, as repository URIs begin."""
    return urlsplit(public_url).netloc or public_url


def _hostname(host: str) -> str | None:
    try:
        return urlsplit("//" + host).hostname
    except ValueError:
        return None


def addressed_account(host: str | None) -> str | None:
    """The account a `Host` header names by its first label, if it names one."""
    if not host:
        return None
    # Every /v2/ request asks, and a registry is reached by a handful of host names: those of
    # a host name's length are answered once (a longer header is no host, and is not kept).
    return _cached_account(host) if len(host) <= _MAX_HOST else _account(host)


_MAX_HOST = 300


def _account(host: str) -> str | None:
    name = _hostname(host)
    if not name:
        return None
    label, dot, rest = name.partition(".")
    if dot and rest and _ACCOUNT.fullmatch(label):
        return label
    return None


_cached_account = functools.lru_cache(maxsize=1024)(_account)


def account_host(host: str, account_id: str, *, primary_account: str) -> str:
    """The registry host of `account_id` on a server reached at `host` (`host[:port]`).

    The server's own account keeps the plain host. Another account's host prefixes its id;
    an IP address cannot take a prefix, so a server reached by IP names the others under
    `localhost` (which reaches it from the same machine wherever `*.localhost` resolves).
    """
    if account_id == primary_account:
        return host
    name = _hostname(host) or host
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return f"{account_id}.{host}"
    port = urlsplit("//" + host).port
    return f"{account_id}.localhost" + (f":{port}" if port else "")
