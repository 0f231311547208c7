"""The signature on every webhook request, and how a receiver checks it.

The signed material is the timestamp in decimal seconds, a dot, and the raw body:
`HMAC-SHA256(secret, f"{timestamp}." + body)`, sent as `X-Cargohold-Signature: sha256=<hex>`
beside `X-Cargohold-Timestamp: <timestamp>`. A receiver recomputes it over the bytes it read
(never a re-serialized JSON), compares in constant time, and refuses a timestamp too far from
its clock (`verify`'s `tolerance`), so a captured request cannot be replayed later. The same
event may come twice (delivery is at least once): its `id`, also in `X-Cargohold-Event-Id`,
tells a receiver it has seen it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Cargohold-Signature"
TIMESTAMP_HEADER = "X-Cargohold-Timestamp"
EVENT_ID_HEADER = "X-Cargohold-Event-Id"
SCHEME = "sha256="
#: How far (seconds) a request's timestamp may be from the receiver's clock by default.
DEFAULT_TOLERANCE = 300


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `X-Cargohold-Signature` value of `body` sent at `timestamp`."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return SCHEME + digest


def signed_headers(secret: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers that sign `body`, sent at `timestamp` (epoch seconds)."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """Whether `headers` (looked up as given, or in lower case) sign `body` with `secret`
    at a time within `tolerance` seconds of `now`."""

    def header(name: str) -> str | None:
        return headers.get(name, headers.get(name.lower()))

    stamp, given = header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER)
    if stamp is None or given is None or not stamp.isascii() or not stamp.isdigit():
        return False
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), given)
