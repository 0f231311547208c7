"""SigV4 requests as received, and what they claim: the Authorization header form and the
presigned query-string form parsed into one `Claim` (credential scope, signed headers, signature,
signing time).

Malformed input raises `IncompleteSignature` (or, for a wrong scope terminator,
`InvalidSignature`) with the messages AWS gives; nothing here looks at a secret or a signature's
value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_to_bytes

from cargohold.auth.errors import IncompleteSignature, InvalidSignature

SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DEFAULT_MAX_SKEW = timedelta(minutes=15)
# AWS's ceiling for X-Amz-Expires: the signing key is derived from the date and lives a week.
MAX_PRESIGNED_EXPIRES = 604_800

SecretLookup = Callable[[str], str | None]
"""Maps an access key id to its secret access key; None when the key is unknown or inactive."""

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_TIMESTAMP = re.compile(r"\d{8}T\d{6}Z")
_SCOPE_DATE = re.compile(r"\d{8}")
_ALGORITHM_NAME = re.compile(r"AWS4-[A-Z0-9-]{1,32}")
_TERMINATOR = "aws4_request"
_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
#: Any of these in the query string makes a request a presigned one.
PRESIGN_MARKERS = frozenset({b"X-Amz-Algorithm", b"X-Amz-Credential", b"X-Amz-Signature"})


@dataclass(frozen=True)
class SignedRequest:
    """An incoming request as the HTTP front received it.

    ``path`` and ``query_string`` are exactly as sent on the wire, still percent-encoded (ASGI
    ``raw_path`` and ``query_string``), without the ``?``. ``headers`` may be any mapping;
    names are compared case-insensitively, and a header sent several times must appear once
    per occurrence in ``items()`` (as Starlette's ``Headers`` does) or already joined with ``,``.
    ``host`` must be the Host the client sent, not one rewritten by a proxy.
    """

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class CredentialScope:
    """``AKID/20240101/us-east-1/ecr/aws4_request``, parsed."""

    access_key_id: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class Claim:
    """What the client says it signed, parsed from the header or the query string."""

    scope: CredentialScope
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    signed_at: datetime


def parse_credential_scope(credential: str) -> CredentialScope:
    """Parse ``AKID/YYYYMMDD/region/service/aws4_request``.

    Raises `IncompleteSignature` for the wrong shape and `InvalidSignature` for a wrong
    terminator, as AWS does.
    """
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts[:4]):
        raise IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, "
            "e.g. keyid/date/region/service/term"
        )
    access_key_id, date, region, service, terminator = parts
    if not _SCOPE_DATE.fullmatch(date):
        raise IncompleteSignature("Credential date must be in the form YYYYMMDD")
    if terminator != _TERMINATOR:
        raise InvalidSignature(
            f"Credential should be scoped with a valid terminator: '{_TERMINATOR}'."
        )
    return CredentialScope(access_key_id, date, region, service)


def parse_authorization(value: str, headers: Mapping[str, str]) -> Claim:
    """The claim of an `Authorization: AWS4-HMAC-SHA256 …` header (`headers`: lower-cased
    names, for the signing time in `X-Amz-Date` or `Date`)."""
    algorithm, _, rest = value.partition(" ")
    if algorithm != SIGV4_ALGORITHM:
        if _ALGORITHM_NAME.fullmatch(algorithm):
            raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{algorithm}'")
        # Basic, Bearer, SigV2 …: report what a SigV4 header lacks, as AWS does.
        rest = ""

    params: dict[str, str] = {}
    # Components are separated by commas, whitespace, or both; no value contains either.
    for component in re.split(r"[,\s]+", rest.strip()):
        if not component:
            continue
        name, equals, component_value = component.partition("=")
        if not equals:
            raise IncompleteSignature(
                "Authorization header contains a component that is not a valid key=value pair "
                "(missing equal-sign)."
            )
        if name in params:
            raise IncompleteSignature("Authorization header contains a duplicate parameter.")
        params[name] = component_value

    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    if "x-amz-date" not in headers and "date" not in headers:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise IncompleteSignature(" ".join(problems))

    if "x-amz-date" in headers:
        timestamp, signed_at = parse_timestamp(headers["x-amz-date"])
    else:
        timestamp, signed_at = parse_http_date(headers["date"])
    return Claim(
        scope=parse_credential_scope(params["Credential"]),
        signed_headers=parse_signed_headers(params["SignedHeaders"]),
        signature=params["Signature"],
        timestamp=timestamp,
        signed_at=signed_at,
    )


def parse_presigned(params: Mapping[str, str]) -> tuple[Claim, int]:
    """The claim of a presigned request's `X-Amz-*` parameters, and its `X-Amz-Expires`."""
    if not all(params.get(name) for name in _PRESIGN_PARAMS):
        raise IncompleteSignature(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
            "and X-Amz-Expires parameters."
        )
    if params["X-Amz-Algorithm"] != SIGV4_ALGORITHM:
        raise IncompleteSignature(f'X-Amz-Algorithm only supports "{SIGV4_ALGORITHM}"')
    timestamp, signed_at = parse_timestamp(params["X-Amz-Date"])
    claim = Claim(
        scope=parse_credential_scope(params["X-Amz-Credential"]),
        signed_headers=parse_signed_headers(params["X-Amz-SignedHeaders"]),
        signature=params["X-Amz-Signature"],
        timestamp=timestamp,
        signed_at=signed_at,
    )
    return claim, parse_expires(params["X-Amz-Expires"])


def parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in value.split(";") if name.strip())
    if "host" not in names:
        raise IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    return names


def parse_timestamp(value: str) -> tuple[str, datetime]:
    try:
        if not _TIMESTAMP.fullmatch(value):
            raise ValueError
        signed_at = datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise IncompleteSignature(
            "Date must be in ISO-8601 'basic format'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
    return value, signed_at


def parse_http_date(value: str) -> tuple[str, datetime]:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise IncompleteSignature("Date header must be an RFC 7231 HTTP-date") from None
    signed_at = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return signed_at.strftime(TIMESTAMP_FORMAT), signed_at


def parse_expires(value: str) -> int:
    if not value.isascii() or not value.isdigit():  # isdigit alone accepts '²'
        raise IncompleteSignature("X-Amz-Expires should be a number")
    expires_in = int(value) if len(value) <= 18 else MAX_PRESIGNED_EXPIRES + 1
    if expires_in < 1:
        raise IncompleteSignature("X-Amz-Expires must be non-negative")
    if expires_in > MAX_PRESIGNED_EXPIRES:
        raise IncompleteSignature(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES}"
        )
    return expires_in


def presign_params(query_string: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for raw_name, raw_value in query_pairs(query_string):
        if not raw_name.startswith(b"X-Amz-"):
            continue
        try:
            name, value = raw_name.decode(), raw_value.decode()
        except UnicodeDecodeError:
            raise IncompleteSignature(
                "Query-string authentication parameters must be UTF-8."
            ) from None
        if name in params:
            raise IncompleteSignature("Query-string authentication parameters must appear once.")
        params[name] = value
    return params


def lower_case_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ``,`` as SigV4 canonicalisation does."""
    merged: dict[str, list[str]] = {}
    for name, value in headers.items():
        merged.setdefault(name.lower(), []).append(value)
    return {name: ",".join(values) for name, values in merged.items()}


def query_pairs(query_string: str) -> Iterable[tuple[bytes, bytes]]:
    for pair in query_string.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        yield unquote_to_bytes(name), unquote_to_bytes(value)


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC)
