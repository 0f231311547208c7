"""SigV4 signatures computed by botocore: the signature a received request should carry, and
presigned URLs.

The expected signature is never computed by hand. The request is rebuilt as a botocore
``AWSRequest`` holding only what the client says it signed, and botocore's own ``SigV4Auth``
canonicalises and signs it, so the server and boto3 share one implementation of the spec
(path normalisation, header value trimming, query ordering, payload hashing, key derivation).
Only non-S3 semantics are supported: paths are normalised and double-encoded, payloads are hashed.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from http.client import HTTPMessage
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

from cargohold.auth.errors import InvalidSignature
from cargohold.auth.sigv4_parsing import (
    MAX_PRESIGNED_EXPIRES,
    SIGV4_ALGORITHM,
    TIMESTAMP_FORMAT,
    Claim,
    SignedRequest,
    as_utc,
    query_pairs,
)

_SIGNATURE = re.compile(r"[0-9a-f]{64}")
# Only the URL's path and query reach botocore's canonicalisation; the host is taken from the
# signed Host header, so the authority here is a placeholder that can never be mistaken for one.
_PLACEHOLDER_ORIGIN = "https://sigv4.invalid"
# RFC 3986 unreserved characters, the set SigV4 leaves unencoded in canonical query strings.
_UNRESERVED = "-_.~"


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


def check_signature(
    claim: Claim,
    request: SignedRequest,
    headers: Mapping[str, str],
    signed_query: str,
    secret: str,
) -> None:
    """Raise InvalidSignature unless `claim` carries the signature botocore computes for the
    request with `secret` (`signed_query`: the query string as `canonical_query` re-encodes it)."""
    if not _SIGNATURE.fullmatch(claim.signature):
        raise InvalidSignature()
    # A path that urlsplit would cut short cannot be what the client signed.
    if not request.path.startswith("/") or "?" in request.path or "#" in request.path:
        raise InvalidSignature()

    url = f"{_PLACEHOLDER_ORIGIN}{request.path}"
    if signed_query:
        url = f"{url}?{signed_query}"
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


def canonical_query(query_string: str, *, drop: str | None = None) -> str:
    """Re-encode every parameter the way SigV4 does; botocore then sorts them.

    Decoding first makes ``%2f``, ``%2F`` and unencoded-but-safe characters equivalent, as the
    spec requires, instead of signing whatever spelling reached the server.
    """
    dropped = drop.encode() if drop is not None else None
    return "&".join(
        f"{quote(name, safe=_UNRESERVED)}={quote(value, safe=_UNRESERVED)}"
        for name, value in query_pairs(query_string)
        if name != dropped
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
    signed_at = datetime.now(UTC) if now is None else as_utc(now)
    timestamp = signed_at.strftime(TIMESTAMP_FORMAT)

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
