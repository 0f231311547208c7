"""AWS Signature Version 4: verifying signed requests and presigning URLs.

This module owns the answer to "did the holder of this access key sign exactly this request, and
recently enough?" for the SigV4 fronts (ECR, STS, IAM). It knows nothing about principals,
policies or HTTP frameworks: the front hands over a `SignedRequest`, a function that maps an access
key id to its secret, and the current time; it gets back a `VerifiedCaller` or an `AuthError`.

The checks run here, in the order AWS reports their failures: the header or query form is
parsed (`cargohold.auth.sigv4_parsing`), the credential scope, the clock and the payload hash
are checked, and the signature is compared with the one botocore computes for what the client
says it signed (`cargohold.auth.sigv4_signature`, which also presigns URLs).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cargohold.auth.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureExpired,
    UnrecognizedClient,
)
from cargohold.auth.sigv4_parsing import (
    DEFAULT_MAX_SKEW,
    MAX_PRESIGNED_EXPIRES,
    PRESIGN_MARKERS,
    SIGV4_ALGORITHM,
    TIMESTAMP_FORMAT,
    UNSIGNED_PAYLOAD,
    Claim,
    CredentialScope,
    SecretLookup,
    SignedRequest,
    as_utc,
    lower_case_headers,
    parse_authorization,
    parse_credential_scope,
    parse_presigned,
    presign_params,
    query_pairs,
)
from cargohold.auth.sigv4_signature import canonical_query, check_signature, presign_url

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

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A region name safe to repeat in an error message.
_SHOWN_REGION = re.compile(r"[a-z0-9-]{0,40}")


@dataclass(frozen=True)
class VerifiedCaller:
    """Who signed the request. A session token is returned unchecked: the caller validates it."""

    access_key_id: str
    region: str
    service: str
    session_token: str | None
    signed_at: datetime


def verify(
    request: SignedRequest,
    lookup_secret: SecretLookup,
    *,
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    service: str | None = None,
    region: str | Collection[str] | None = None,
    must_sign: Collection[str] = (),
    allow_unsigned_payload: bool = False,
) -> VerifiedCaller:
    """Authenticate a SigV4-signed request, header form or (delegated) query form.

    ``service`` / ``region``, when given, are what the credential scope must name (``region``:
    one name, or the names accepted). ``must_sign`` names headers (lower case) that, when the
    request carries them, must be among the signed ones: what selects the operation, such as
    ``x-amz-target``, must not be changeable under a valid signature.
    ``allow_unsigned_payload`` accepts a signed ``x-amz-content-sha256: UNSIGNED-PAYLOAD``,
    which leaves the body unprotected; boto3 never sends it to non-S3 services.

    Raises `MissingAuthenticationToken` (no signature), `IncompleteSignature` (malformed),
    `SignatureExpired` (more than ``max_skew`` from ``now``), `UnrecognizedClient` (unknown key),
    `InvalidSignature` (mismatch), or for the query form `RequestExpired`.
    """
    headers = lower_case_headers(request.headers)
    authorization = headers.get("authorization", "").strip()
    presigned = any(name in PRESIGN_MARKERS for name, _ in query_pairs(request.query_string))
    if not authorization:
        if presigned:
            return verify_presigned(
                request,
                lookup_secret,
                now=now,
                max_skew=max_skew,
                service=service,
                region=region,
                must_sign=must_sign,
            )
        raise MissingAuthenticationToken()
    if presigned:
        raise IncompleteSignature(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter "
            "or the Authorization header should be specified"
        )

    now = as_utc(now)
    claim = parse_authorization(authorization, headers)
    _check_scope(claim, service=service, region=region)
    _check_signed_headers(claim, headers, must_sign)
    _check_clock_skew(claim, now=now, max_skew=max_skew)
    secret = _secret_for(claim.scope.access_key_id, lookup_secret)
    _check_payload(claim, headers, request.body, allow_unsigned_payload=allow_unsigned_payload)
    check_signature(claim, request, headers, canonical_query(request.query_string), secret)
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
    region: str | Collection[str] | None = None,
    must_sign: Collection[str] = (),
) -> VerifiedCaller:
    """Authenticate a presigned (query-string) SigV4 request.

    Valid from ``X-Amz-Date`` (less ``max_skew`` for clock drift) until ``X-Amz-Expires``
    seconds later; after that `RequestExpired`. Other errors as for `verify`.
    """
    now = as_utc(now)
    headers = lower_case_headers(request.headers)
    params = presign_params(request.query_string)
    claim, expires_in = parse_presigned(params)
    _check_scope(claim, service=service, region=region)
    _check_signed_headers(claim, headers, must_sign)
    if claim.signed_at - now > max_skew:
        raise SignatureExpired(_not_yet_current_message(claim.timestamp, now, max_skew))
    if now > claim.signed_at + timedelta(seconds=expires_in):
        raise RequestExpired()
    secret = _secret_for(claim.scope.access_key_id, lookup_secret)
    _check_payload(claim, headers, request.body, allow_unsigned_payload=False)
    signed_query = canonical_query(request.query_string, drop="X-Amz-Signature")
    check_signature(claim, request, headers, signed_query, secret)
    return VerifiedCaller(
        access_key_id=claim.scope.access_key_id,
        region=claim.scope.region,
        service=claim.scope.service,
        session_token=params.get("X-Amz-Security-Token"),
        signed_at=claim.signed_at,
    )


# -- checks --------------------------------------------------------------------------------


def _check_scope(
    claim: Claim, *, service: str | None, region: str | Collection[str] | None
) -> None:
    """The scope's date, region and service, in the order AWS checks them, with its messages
    (trailing space included)."""
    scope = claim.scope
    if scope.date != claim.timestamp[:8]:
        raise InvalidSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope.date}' != '{claim.timestamp[:8]}', from '{claim.timestamp}'."
        )
    allowed = {region} if isinstance(region, str) else region
    if allowed is not None and scope.region not in allowed:
        shown = scope.region if _SHOWN_REGION.fullmatch(scope.region) else "(not a region name)"
        raise InvalidSignature(f"Credential should be scoped to a valid region, not '{shown}'. ")
    if service is not None and scope.service != service:
        raise InvalidSignature(f"Credential should be scoped to correct service: '{service}'. ")


def _check_signed_headers(
    claim: Claim, headers: Mapping[str, str], must_sign: Collection[str]
) -> None:
    for name in must_sign:
        if name in headers and name not in claim.signed_headers:
            raise IncompleteSignature(
                f"'{_header_spelling(name)}' must be a 'SignedHeader' in the AWS Authorization."
            )


def _header_spelling(name: str) -> str:
    """``x-amz-target`` as AWS writes header names in messages: ``X-Amz-Target``."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _check_clock_skew(claim: Claim, *, now: datetime, max_skew: timedelta) -> None:
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
    claim: Claim, headers: Mapping[str, str], body: bytes, *, allow_unsigned_payload: bool
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


def _format(moment: datetime) -> str:
    return moment.strftime(TIMESTAMP_FORMAT)


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g}"
