"""AWS Signature Version 4: verifying signed requests and presigning URLs.

This module owns the answer to "did the holder of this access key sign exactly this request, and
recently enough?" for the SigV4 fronts (ECR, STS, IAM). It knows nothing about principals,
policies or HTTP frameworks: the front hands over a `SignedRequest`, a function that maps an access
key id to its secret, and the current time; it gets back a `VerifiedCaller` or an `AuthError`.

The expected signature is never computed by hand. The request is rebuilt as a botocore
``AWSRequest`` holding only what the client says it signed, and botocore's own ``SigV4Auth``
canonicalises and signs it, so the server and boto3 share one implementation of the spec
(path normalisation, header value trimming, query ordering, payload hashing, key derivation).
Only non-S3 semantics are supported: paths are normalised and double-encoded, payloads are hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.client import HTTPMessage
from urllib.parse import parse_qsl, quote, unquote_to_bytes, urlsplit, urlunsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

from cargohold.auth.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureExpired,
    UnrecognizedClient,
)

__all__ = [
    "DEFAULT_MAX_SKEW",
    "MAX_PRESIGNED_EXPIRES",
    "SIGV4_ALGORITHM",
    "UNSIGNED_PAYLOAD",
    "CredentialScope",
    "SecretLookup",
    "SignedRequest",
    "VerifiedCaller",
    "parse_credential_scope",
    "presign_url",
    "verify",
    "verify_presigned",
]

SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DEFAULT_MAX_SKEW = timedelta(minutes=15)
# AWS's ceiling for X-Amz-Expires: the signing key is derived from the date and lives a week.
MAX_PRESIGNED_EXPIRES = 604_800

SecretLookup = Callable[[str], str | None]
"""Maps an access key id to its secret access key; None when the key is unknown or inactive."""

_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_TIMESTAMP = re.compile(r"\d{8}T\d{6}Z")
_SCOPE_DATE = re.compile(r"\d{8}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ALGORITHM_NAME = re.compile(r"AWS4-[A-Z0-9-]{1,32}")
_TERMINATOR = "aws4_request"
# Only the URL's path and query reach botocore's canonicalisation; the host is taken from the
# signed Host header, so the authority here is a placeholder that can never be mistaken for one.
_PLACEHOLDER_ORIGIN = "https://sigv4.invalid"
# RFC 3986 unreserved characters, the set SigV4 leaves unencoded in canonical query strings.
_UNRESERVED = "-_.~"
_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
_PRESIGN_MARKERS = frozenset({b"X-Amz-Algorithm", b"X-Amz-Credential", b"X-Amz-Signature"})


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
class VerifiedCaller:
    """Who signed the request. A session token is returned unchecked: the caller validates it."""

    access_key_id: str
    region: str
    service: str
    session_token: str | None
    signed_at: datetime


@dataclass(frozen=True)
class _Claim:
    """What the client says it signed, parsed from the header or the query string."""

    scope: CredentialScope
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    signed_at: datetime


class _ClientChosenHeaders(SigV4Auth):
    """botocore's signer, told to sign exactly the headers the client listed.

    botocore, as a signer, picks headers itself: it skips some (User-Agent, Expect, …) and adds
    Host from the URL. As a verifier the client's SignedHeaders list is the truth, and the
    request handed to this signer carries only those headers.
    """

    def headers_to_sign(self, request: AWSRequest) -> HTTPMessage:
        chosen = HTTPHeaders()
        for name, value in request.headers.items():
            chosen[name.lower()] = value
        return chosen


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


def verify(
    request: SignedRequest,
    lookup_secret: SecretLookup,
    *,
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    service: str | None = None,
    region: str | None = None,
    allow_unsigned_payload: bool = False,
) -> VerifiedCaller:
    """Authenticate a SigV4-signed request, header form or (delegated) query form.

    ``service`` / ``region``, when given, are what the credential scope must name.
    ``allow_unsigned_payload`` accepts a signed ``x-amz-content-sha256: UNSIGNED-PAYLOAD``,
    which leaves the body unprotected; boto3 never sends it to non-S3 services.

    Raises `MissingAuthenticationToken` (no signature), `IncompleteSignature` (malformed),
    `SignatureExpired` (more than ``max_skew`` from ``now``), `UnrecognizedClient` (unknown key),
    `InvalidSignature` (mismatch), or for the query form `RequestExpired`.
    """
    headers = _lower_case_headers(request.headers)
    authorization = headers.get("authorization", "").strip()
    presigned = any(name in _PRESIGN_MARKERS for name, _ in _query_pairs(request.query_string))
    if not authorization:
        if presigned:
            return verify_presigned(
                request, lookup_secret, now=now, max_skew=max_skew, service=service, region=region
            )
        raise MissingAuthenticationToken()
    if presigned:
        raise IncompleteSignature(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter "
            "or the Authorization header should be specified"
        )

    now = _as_utc(now)
    claim = _parse_authorization(authorization, headers)
    _check_scope(claim, service=service, region=region)
    _check_clock_skew(claim, now=now, max_skew=max_skew)
    secret = _secret_for(claim.scope.access_key_id, lookup_secret)
    _check_payload(claim, headers, request.body, allow_unsigned_payload=allow_unsigned_payload)
    _check_signature(claim, request, headers, _canonical_query(request.query_string), secret)
    return VerifiedCaller(
        access_key_id=claim.scope.access_key_id,
        region=claim.scope.region,
        service=claim.scope.service,
        session_token=headers.get("x-amz-security-token"),
        signed_at=claim.signed_at,
    )


def verify_presigned(
    request: SignedRequest,
    lookup_secret: SecretLookup,
    *,
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    service: str | None = None,
    region: str | None = None,
) -> VerifiedCaller:
    """Authenticate a presigned (query-string) SigV4 request.

    Valid from ``X-Amz-Date`` (less ``max_skew`` for clock drift) until ``X-Amz-Expires``
    seconds later; after that `RequestExpired`. Other errors as for `verify`.
    """
    now = _as_utc(now)
    headers = _lower_case_headers(request.headers)
    params = _presign_params(request.query_string)
    if not all(params.get(name) for name in _PRESIGN_PARAMS):
        raise IncompleteSignature(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
            "and X-Amz-Expires parameters."
        )
    if params["X-Amz-Algorithm"] != SIGV4_ALGORITHM:
        raise IncompleteSignature(f'X-Amz-Algorithm only supports "{SIGV4_ALGORITHM}"')
    timestamp, signed_at = _parse_timestamp(params["X-Amz-Date"])
    claim = _Claim(
        scope=parse_credential_scope(params["X-Amz-Credential"]),
        signed_headers=_parse_signed_headers(params["X-Amz-SignedHeaders"]),
        signature=params["X-Amz-Signature"],
        timestamp=timestamp,
        signed_at=signed_at,
    )
    expires_in = _parse_expires(params["X-Amz-Expires"])
    _check_scope(claim, service=service, region=region)
    if claim.signed_at - now > max_skew:
        raise SignatureExpired(_not_yet_current_message(claim.timestamp, now, max_skew))
    if now > claim.signed_at + timedelta(seconds=expires_in):
        raise RequestExpired()
    secret = _secret_for(claim.scope.access_key_id, lookup_secret)
    _check_payload(claim, headers, request.body, allow_unsigned_payload=False)
    canonical_query = _canonical_query(request.query_string, drop="X-Amz-Signature")
    _check_signature(claim, request, headers, canonical_query, secret)
    return VerifiedCaller(
        access_key_id=claim.scope.access_key_id,
        region=claim.scope.region,
        service=claim.scope.service,
        session_token=params.get("X-Amz-Security-Token"),
        signed_at=claim.signed_at,
    )


def presign_url(
    url: str,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str,
    expires_in: int,
    session_token: str | None = None,
    now: datetime | None = None,
    method: str = "GET",
) -> str:
    """Return ``url`` presigned with SigV4 query parameters, as botocore's ``SigV4QueryAuth`` does.

    Only the Host header is signed, so the URL works from any client. ``now`` (default: the
    current time) is the signing time; botocore's own ``add_auth`` always reads the clock.
    """
    if not 1 <= expires_in <= MAX_PRESIGNED_EXPIRES:
        raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGNED_EXPIRES} seconds")
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc or parts.fragment:
        raise ValueError("url must be absolute and have no fragment")
    signed_at = datetime.now(UTC) if now is None else _as_utc(now)
    timestamp = signed_at.strftime(_TIMESTAMP_FORMAT)

    signer = SigV4QueryAuth(
        Credentials(access_key_id, secret_access_key, session_token),
        service,
        region,
        expires=expires_in,
    )
    aws_request = AWSRequest(method=method, url=url)
    aws_request.context["timestamp"] = timestamp
    auth_params: dict[str, str | int] = {
        "X-Amz-Algorithm": SIGV4_ALGORITHM,
        "X-Amz-Credential": signer.scope(aws_request),
        "X-Amz-Date": timestamp,
        "X-Amz-Expires": expires_in,
        "X-Amz-SignedHeaders": signer.signed_headers(signer.headers_to_sign(aws_request)),
    }
    if session_token is not None:
        auth_params["X-Amz-Security-Token"] = session_token
    # Same layout as SigV4QueryAuth: the URL's own parameters first, then the auth parameters.
    existing = dict(parse_qsl(parts.query, keep_blank_values=True))
    operation_params = f"{percent_encode_sequence(existing)}&" if existing else ""
    query = f"{operation_params}{percent_encode_sequence(auth_params)}"
    aws_request.url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    canonical_request = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical_request)
    signature = signer.signature(string_to_sign, aws_request)
    return f"{aws_request.url}&X-Amz-Signature={signature}"


# -- parsing -------------------------------------------------------------------------------


def _parse_authorization(value: str, headers: Mapping[str, str]) -> _Claim:
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
        timestamp, signed_at = _parse_timestamp(headers["x-amz-date"])
    else:
        timestamp, signed_at = _parse_http_date(headers["date"])
    return _Claim(
        scope=parse_credential_scope(params["Credential"]),
        signed_headers=_parse_signed_headers(params["SignedHeaders"]),
        signature=params["Signature"],
        timestamp=timestamp,
        signed_at=signed_at,
    )


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in value.split(";") if name.strip())
    if "host" not in names:
        raise IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    return names


def _parse_timestamp(value: str) -> tuple[str, datetime]:
    try:
        if not _TIMESTAMP.fullmatch(value):
            raise ValueError
        signed_at = datetime.strptime(value, _TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise IncompleteSignature(
            "Date must be in ISO-8601 'basic format'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
    return value, signed_at


def _parse_http_date(value: str) -> tuple[str, datetime]:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise IncompleteSignature("Date header must be an RFC 7231 HTTP-date") from None
    signed_at = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return signed_at.strftime(_TIMESTAMP_FORMAT), signed_at


def _parse_expires(value: str) -> int:
    if not value.isdigit():
        raise IncompleteSignature("X-Amz-Expires should be a number")
    expires_in = int(value)
    if expires_in < 1:
        raise IncompleteSignature("X-Amz-Expires must be non-negative")
    if expires_in > MAX_PRESIGNED_EXPIRES:
        raise IncompleteSignature(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES}"
        )
    return expires_in


def _presign_params(query_string: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for raw_name, raw_value in _query_pairs(query_string):
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


# -- checks --------------------------------------------------------------------------------


def _check_scope(claim: _Claim, *, service: str | None, region: str | None) -> None:
    scope = claim.scope
    if scope.date != claim.timestamp[:8]:
        raise InvalidSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope.date}' != '{claim.timestamp[:8]}', from '{claim.timestamp}'."
        )
    if service is not None and scope.service != service:
        raise InvalidSignature(f"Credential should be scoped to correct service: '{service}'.")
    if region is not None and scope.region != region:
        raise InvalidSignature("Credential should be scoped to a valid region.")


def _check_clock_skew(claim: _Claim, *, now: datetime, max_skew: timedelta) -> None:
    if now - claim.signed_at > max_skew:
        raise SignatureExpired(
            f"Signature expired: {claim.timestamp} is now earlier than "
            f"{_format(now - max_skew)} ({_format(now)} - {_minutes(max_skew)} min.)"
        )
    if claim.signed_at - now > max_skew:
        raise SignatureExpired(_not_yet_current_message(claim.timestamp, now, max_skew))


def _not_yet_current_message(timestamp: str, now: datetime, max_skew: timedelta) -> str:
    return (
        f"Signature not yet current: {timestamp} is still later than "
        f"{_format(now + max_skew)} ({_format(now)} + {_minutes(max_skew)} min.)"
    )


def _secret_for(access_key_id: str, lookup_secret: SecretLookup) -> str:
    secret = lookup_secret(access_key_id)
    if secret is None:
        raise UnrecognizedClient()
    return secret


def _check_payload(
    claim: _Claim, headers: Mapping[str, str], body: bytes, *, allow_unsigned_payload: bool
) -> None:
    """Hold a signed ``x-amz-content-sha256`` to the body it claims to describe.

    botocore signs that header's value in place of hashing the body, so without this check a
    request could carry any body under a valid signature.
    """
    if "x-amz-content-sha256" not in claim.signed_headers:
        return
    claimed = headers.get("x-amz-content-sha256", "")
    if claimed == UNSIGNED_PAYLOAD:
        if not allow_unsigned_payload:
            raise InvalidSignature()
        return
    if not _SHA256_HEX.fullmatch(claimed):
        raise InvalidSignature()
    if not hmac.compare_digest(claimed, hashlib.sha256(body).hexdigest()):
        raise InvalidSignature()


def _check_signature(
    claim: _Claim,
    request: SignedRequest,
    headers: Mapping[str, str],
    canonical_query: str,
    secret: str,
) -> None:
    if not _SIGNATURE.fullmatch(claim.signature):
        raise InvalidSignature()
    # A path that urlsplit would cut short cannot be what the client signed.
    if not request.path.startswith("/") or "?" in request.path or "#" in request.path:
        raise InvalidSignature()

    url = f"{_PLACEHOLDER_ORIGIN}{request.path}"
    if canonical_query:
        url = f"{url}?{canonical_query}"
    aws_request = AWSRequest(
        method=request.method,
        url=url,
        headers={name: headers[name] for name in claim.signed_headers if name in headers},
        data=request.body,
    )
    aws_request.context["timestamp"] = claim.timestamp
    scope = claim.scope
    signer = _ClientChosenHeaders(
        Credentials(scope.access_key_id, secret), scope.service, scope.region
    )
    canonical_request = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical_request)
    expected = signer.signature(string_to_sign, aws_request)
    if not hmac.compare_digest(expected.encode("ascii"), claim.signature.encode("ascii")):
        raise InvalidSignature()


# -- helpers -------------------------------------------------------------------------------


def _lower_case_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ``,`` as SigV4 canonicalisation does."""
    merged: dict[str, list[str]] = {}
    for name, value in headers.items():
        merged.setdefault(name.lower(), []).append(value)
    return {name: ",".join(values) for name, values in merged.items()}


def _query_pairs(query_string: str) -> Iterable[tuple[bytes, bytes]]:
    for pair in query_string.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        yield unquote_to_bytes(name), unquote_to_bytes(value)


def _canonical_query(query_string: str, *, drop: str | None = None) -> str:
    """Re-encode every parameter the way SigV4 does; botocore then sorts them.

    Decoding first makes ``%2f``, ``%2F`` and unencoded-but-safe characters equivalent, as the
    spec requires, instead of signing whatever spelling reached the server.
    """
    dropped = drop.encode() if drop is not None else None
    return "&".join(
        f"{quote(name, safe=_UNRESERVED)}={quote(value, safe=_UNRESERVED)}"
        for name, value in _query_pairs(query_string)
        if name != dropped
    )


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC)


def _format(moment: datetime) -> str:
    return moment.strftime(_TIMESTAMP_FORMAT)


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g}"
