"""SigV4 verification against requests signed by botocore exactly as boto3 signs them."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from starlette.datastructures import Headers

from cargohold.auth.errors import (
    AuthError,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureExpired,
    UnrecognizedClient,
)
from cargohold.auth.sigv4 import (
    CredentialScope,
    SignedRequest,
    VerifiedCaller,
    parse_credential_scope,
    presign_url,
    verify,
    verify_presigned,
)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_ACCESS_KEY = "ASIAIOSFODNN7EXAMPLE"
SESSION_SECRET_KEY = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE//////////wEaDEXAMPLETOKEN"
SECRETS = {ACCESS_KEY: SECRET_KEY, SESSION_ACCESS_KEY: SESSION_SECRET_KEY}
HOST = "ecr.us-east-1.amazonaws.com"
TARGET = "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"
BODY = b'{"repositoryNames": ["app"]}'
NOW = datetime(2024, 5, 24, 12, 0, 0, tzinfo=UTC)


def lookup(access_key_id: str) -> str | None:
    return SECRETS.get(access_key_id)


def botocore_clock(at: datetime) -> mock._patch[mock.MagicMock]:
    """Freeze the clock botocore's signers read, so a request can be signed at any moment."""
    return mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None))


def sign(
    *,
    body: bytes = BODY,
    at: datetime = NOW,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    token: str | None = None,
    url: str = f"https://{HOST}/",
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    service: str = "ecr",
    region: str = "us-east-1",
) -> SignedRequest:
    """Sign as boto3's ECR client does, and return what the server would receive."""
    aws_request = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={
            "X-Amz-Target": TARGET,
            "Content-Type": "application/x-amz-json-1.1",
            **(headers or {}),
        },
    )
    with botocore_clock(at):
        SigV4Auth(Credentials(access_key, secret_key, token), service, region).add_auth(aws_request)
    prepared = aws_request.prepare()
    parts = urlsplit(prepared.url)
    # The HTTP client adds Host on the wire; botocore signed the same value.
    wire_headers = {"Host": parts.netloc, **dict(prepared.headers.items())}
    return SignedRequest(
        method=method,
        path=parts.path,
        query_string=parts.query,
        headers=wire_headers,
        body=_bytes(prepared.body),
    )


def _bytes(body: object) -> bytes:
    assert body is None or isinstance(body, bytes)
    return body or b""


def with_headers(request: SignedRequest, **changes: str) -> SignedRequest:
    headers = dict(request.headers)
    for name, value in changes.items():
        headers[name.replace("_", "-")] = value
    return replace(request, headers=headers)


def without_header(request: SignedRequest, name: str) -> SignedRequest:
    return replace(
        request, headers={k: v for k, v in request.headers.items() if k.lower() != name.lower()}
    )


# -- header form: the happy path -------------------------------------------------------------


def test_a_request_signed_like_boto3_verifies() -> None:
    caller = verify(sign(), lookup, now=NOW, service="ecr", region="us-east-1")

    assert caller == VerifiedCaller(
        access_key_id=ACCESS_KEY,
        region="us-east-1",
        service="ecr",
        session_token=None,
        signed_at=NOW,
    )


def test_clock_skew_within_fifteen_minutes_is_tolerated_both_ways() -> None:
    verify(sign(at=NOW - timedelta(minutes=14)), lookup, now=NOW)
    verify(sign(at=NOW + timedelta(minutes=14)), lookup, now=NOW)


def test_header_names_are_looked_up_case_insensitively() -> None:
    request = sign()
    lower = replace(request, headers={k.lower(): v for k, v in request.headers.items()})
    upper = replace(request, headers={k.upper(): v for k, v in request.headers.items()})

    assert verify(lower, lookup, now=NOW).access_key_id == ACCESS_KEY
    assert verify(upper, lookup, now=NOW).access_key_id == ACCESS_KEY


def test_starlette_headers_with_a_repeated_signed_header_verify() -> None:
    aws_request = AWSRequest(
        method="POST", url=f"https://{HOST}/", data=BODY, headers={"X-Amz-Target": TARGET}
    )
    aws_request.headers.add_header("X-Amz-Meta-Tag", "one")
    aws_request.headers.add_header("X-Amz-Meta-Tag", "two")
    with botocore_clock(NOW):
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "ecr", "us-east-1").add_auth(aws_request)
    raw = [(b"host", HOST.encode())] + [
        (name.lower().encode(), value.encode()) for name, value in aws_request.headers.items()
    ]
    request = SignedRequest("POST", "/", "", Headers(raw=raw), BODY)

    assert "x-amz-meta-tag" in aws_request.headers["Authorization"]
    assert verify(request, lookup, now=NOW).access_key_id == ACCESS_KEY
    # Dropping one of the two values changes what was signed.
    one_dropped = [pair for pair in raw if pair != (b"x-amz-meta-tag", b"two")]
    single = SignedRequest("POST", "/", "", Headers(raw=one_dropped), BODY)
    with pytest.raises(InvalidSignature):
        verify(single, lookup, now=NOW)


def test_unsigned_headers_may_change_in_transit() -> None:
    request = with_headers(sign(), User_Agent="a proxy rewrote me", X_Forwarded_For="10.0.0.1")

    assert verify(request, lookup, now=NOW).access_key_id == ACCESS_KEY


def test_header_values_compare_with_sequential_spaces_collapsed() -> None:
    request = sign(headers={"X-Amz-Meta-Note": "  two   spaces  here "})

    verify(request, lookup, now=NOW)
    # SigV4 trims and collapses runs of spaces, so a proxy doing the same does not break it.
    verify(with_headers(request, X_Amz_Meta_Note="two spaces here"), lookup, now=NOW)
    with pytest.raises(InvalidSignature):
        verify(with_headers(request, X_Amz_Meta_Note="two spaces there"), lookup, now=NOW)


def test_a_date_header_stands_in_for_x_amz_date() -> None:
    request = sign(headers={"Date": "Thu, 01 Jan 1970 00:00:00 GMT"})

    assert "X-Amz-Date" not in request.headers
    assert request.headers["Date"] == "Fri, 24 May 2024 12:00:00 -0000"
    assert verify(request, lookup, now=NOW).signed_at == NOW


def test_session_token_is_returned_and_covered_by_the_signature() -> None:
    request = sign(
        access_key=SESSION_ACCESS_KEY, secret_key=SESSION_SECRET_KEY, token=SESSION_TOKEN
    )

    caller = verify(request, lookup, now=NOW)

    assert caller.access_key_id == SESSION_ACCESS_KEY
    assert caller.session_token == SESSION_TOKEN
    with pytest.raises(InvalidSignature):
        verify(with_headers(request, X_Amz_Security_Token="other-token"), lookup, now=NOW)


def test_the_path_is_normalised_as_botocore_normalises_it() -> None:
    request = sign(url=f"https://{HOST}/a/./b/../c//d%20e")

    assert request.path == "/a/./b/../c//d%20e"
    verify(request, lookup, now=NOW)
    with pytest.raises(InvalidSignature):
        verify(replace(request, path="/a/c/d%20f"), lookup, now=NOW)


def test_query_parameters_are_verified_in_any_order_and_spelling() -> None:
    # Encoded as botocore encodes query strings into URLs (percent_encode_sequence).
    query = "b=x%20y%2Fz&a=2&a=1&c="
    request = sign(url=f"https://{HOST}/path?{query}", method="GET", body=b"")

    verify(request, lookup, now=NOW)
    # Same parameters, reordered and with lower-case percent escapes: the same canonical query.
    verify(replace(request, query_string="c=&a=1&b=x%20y%2fz&a=2"), lookup, now=NOW)
    with pytest.raises(InvalidSignature):
        verify(replace(request, query_string="c=&a=1&b=x%20y%2fz&a=3"), lookup, now=NOW)


def test_signed_payload_hash_must_match_the_body() -> None:
    request = sign(headers={"X-Amz-Content-SHA256": hashlib.sha256(BODY).hexdigest()})

    verify(request, lookup, now=NOW)
    with pytest.raises(InvalidSignature):
        verify(replace(request, body=b'{"repositoryNames": ["other"]}'), lookup, now=NOW)


def test_unsigned_payload_is_refused_unless_allowed() -> None:
    request = sign(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})

    with pytest.raises(InvalidSignature):
        verify(request, lookup, now=NOW)
    tampered = replace(request, body=b"anything at all")
    assert verify(tampered, lookup, now=NOW, allow_unsigned_payload=True).access_key_id == (
        ACCESS_KEY
    )


# -- header form: every way it can fail ------------------------------------------------------


def test_a_tampered_body_is_an_invalid_signature() -> None:
    request = replace(sign(), body=b'{"repositoryNames": ["other"]}')

    with pytest.raises(InvalidSignature) as caught:
        verify(request, lookup, now=NOW)

    error = caught.value
    assert error.aws_type == "InvalidSignatureException"
    assert error.http_status == 400
    assert error.message == (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details."
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DeleteRepository"),
        ("Content-Type", "application/json"),
        ("Host", "evil.example"),
    ],
)
def test_a_tampered_signed_header_is_an_invalid_signature(name: str, value: str) -> None:
    request = with_headers(without_header(sign(), name), **{name.replace("-", "_"): value})

    with pytest.raises(InvalidSignature):
        verify(request, lookup, now=NOW)


def test_a_tampered_method_is_an_invalid_signature() -> None:
    with pytest.raises(InvalidSignature):
        verify(replace(sign(), method="PUT"), lookup, now=NOW)


def test_a_tampered_signature_is_an_invalid_signature() -> None:
    request = sign()
    authorization = request.headers["Authorization"]
    flipped = authorization[:-1] + ("0" if authorization[-1] != "0" else "1")

    with pytest.raises(InvalidSignature):
        verify(with_headers(request, Authorization=flipped), lookup, now=NOW)


def test_the_wrong_secret_is_an_invalid_signature() -> None:
    request = sign(secret_key="not-the-secret")

    with pytest.raises(InvalidSignature):
        verify(request, lookup, now=NOW)


def test_an_unknown_access_key_is_an_unrecognized_client() -> None:
    request = sign(access_key="AKIANOTAKEYWEKNOW000")

    with pytest.raises(UnrecognizedClient) as caught:
        verify(request, lookup, now=NOW)

    assert caught.value.aws_type == "UnrecognizedClientException"
    assert caught.value.message == "The security token included in the request is invalid."


def test_no_authorization_at_all_is_a_missing_authentication_token() -> None:
    request = without_header(sign(), "Authorization")

    with pytest.raises(MissingAuthenticationToken) as caught:
        verify(request, lookup, now=NOW)

    assert caught.value.aws_type == "MissingAuthenticationTokenException"
    assert caught.value.http_status == 403
    assert caught.value.message == "Missing Authentication Token"


def test_a_request_signed_twenty_minutes_ago_has_an_expired_signature() -> None:
    request = sign(at=NOW - timedelta(minutes=20))

    with pytest.raises(SignatureExpired) as caught:
        verify(request, lookup, now=NOW)

    error = caught.value
    assert isinstance(error, InvalidSignature)
    assert error.aws_type == "InvalidSignatureException"
    assert error.message == (
        "Signature expired: 20240524T114000Z is now earlier than 20240524T114500Z "
        "(20240524T120000Z - 15 min.)"
    )


def test_a_request_signed_twenty_minutes_ahead_is_not_yet_current() -> None:
    request = sign(at=NOW + timedelta(minutes=20))

    with pytest.raises(SignatureExpired) as caught:
        verify(request, lookup, now=NOW)

    assert caught.value.aws_type == "InvalidSignatureException"
    assert caught.value.message == (
        "Signature not yet current: 20240524T122000Z is still later than 20240524T121500Z "
        "(20240524T120000Z + 15 min.)"
    )


def test_clock_skew_is_checked_before_the_key_is_looked_up() -> None:
    looked_up: list[str] = []

    def recording_lookup(access_key_id: str) -> str | None:
        looked_up.append(access_key_id)
        return lookup(access_key_id)

    with pytest.raises(SignatureExpired):
        verify(sign(at=NOW - timedelta(hours=1)), recording_lookup, now=NOW)
    assert looked_up == []


GOOD_CREDENTIAL = f"Credential={ACCESS_KEY}/20240524/us-east-1/ecr/aws4_request"
GOOD_SIGNED = "SignedHeaders=content-type;host;x-amz-date;x-amz-target"
GOOD_SIGNATURE = "Signature=" + "0" * 64


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        pytest.param(
            f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, {GOOD_SIGNED}",
            "Authorization header requires 'Signature' parameter.",
            id="no-signature",
        ),
        pytest.param(
            "Basic QVdTOnNlY3JldA==",
            "Authorization header requires 'Credential' parameter. "
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter.",
            id="basic",
        ),
        pytest.param(
            f"AWS4-HMAC-SHA512 {GOOD_CREDENTIAL}, {GOOD_SIGNED}, {GOOD_SIGNATURE}",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'",
            id="algorithm",
        ),
        pytest.param(
            f"AWS4-HMAC-SHA256 Credential {ACCESS_KEY}, {GOOD_SIGNED}, {GOOD_SIGNATURE}",
            "Authorization header contains a component that is not a valid key=value pair "
            "(missing equal-sign).",
            id="missing-equals",
        ),
        pytest.param(
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20240524/us-east-1/aws4_request, "
            f"{GOOD_SIGNED}, {GOOD_SIGNATURE}",
            "Credential must have exactly 5 slash-delimited elements, "
            "e.g. keyid/date/region/service/term",
            id="short-credential",
        ),
        pytest.param(
            f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=x-amz-date;x-amz-target, "
            f"{GOOD_SIGNATURE}",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            id="host-unsigned",
        ),
    ],
)
def test_a_malformed_authorization_header_is_an_incomplete_signature(
    authorization: str, message: str
) -> None:
    request = with_headers(sign(), Authorization=authorization)

    with pytest.raises(IncompleteSignature) as caught:
        verify(request, lookup, now=NOW)

    assert caught.value.aws_type == "IncompleteSignatureException"
    assert caught.value.http_status == 400
    assert caught.value.message == message


def test_a_request_without_any_date_is_an_incomplete_signature() -> None:
    request = without_header(sign(), "X-Amz-Date")

    with pytest.raises(IncompleteSignature) as caught:
        verify(request, lookup, now=NOW)

    assert caught.value.message == (
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


def test_a_malformed_date_is_an_incomplete_signature() -> None:
    with pytest.raises(IncompleteSignature):
        verify(with_headers(sign(), X_Amz_Date="2024-05-24T12:00:00Z"), lookup, now=NOW)


def test_compact_comma_separated_components_are_accepted() -> None:
    request = sign()
    compact = request.headers["Authorization"].replace(", ", ",")

    verify(with_headers(request, Authorization=compact), lookup, now=NOW)


def test_the_scope_must_name_the_expected_service_and_region() -> None:
    with pytest.raises(InvalidSignature) as caught:
        verify(sign(service="s3"), lookup, now=NOW, service="ecr")
    assert caught.value.message == "Credential should be scoped to correct service: 'ecr'. "

    with pytest.raises(InvalidSignature) as caught:
        verify(sign(region="eu-west-1"), lookup, now=NOW, region="us-east-1")
    assert caught.value.message == (
        "Credential should be scoped to a valid region, not 'eu-west-1'. "
    )


def test_the_scope_may_name_any_of_the_accepted_regions() -> None:
    accepted = frozenset({"eu-west-1", "us-east-1"})
    assert verify(sign(region="eu-west-1"), lookup, now=NOW, region=accepted).region == (
        "eu-west-1"
    )
    assert verify(sign(region="us-east-1"), lookup, now=NOW, region=accepted).region == (
        "us-east-1"
    )
    with pytest.raises(InvalidSignature) as caught:
        verify(sign(region="xx-west-9"), lookup, now=NOW, region=accepted)
    assert caught.value.message == (
        "Credential should be scoped to a valid region, not 'xx-west-9'. "
    )


def test_a_region_that_is_no_region_name_is_not_repeated() -> None:
    request = sign()
    authorization = request.headers["Authorization"].replace("/us-east-1/", "/<b>'x/")

    with pytest.raises(InvalidSignature) as caught:
        verify(with_headers(request, Authorization=authorization), lookup, now=NOW, region="x")

    assert "<b>" not in caught.value.message
    assert caught.value.message.startswith("Credential should be scoped to a valid region")


def test_a_header_that_must_be_signed_is_refused_unsigned() -> None:
    aws_request = AWSRequest(
        method="POST",
        url=f"https://{HOST}/",
        data=BODY,
        headers={"Content-Type": "application/x-amz-json-1.1"},
    )
    with botocore_clock(NOW):
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "ecr", "us-east-1").add_auth(aws_request)
    prepared = aws_request.prepare()
    headers = {"Host": HOST, **dict(prepared.headers.items()), "X-Amz-Target": TARGET}
    request = SignedRequest(method="POST", path="/", query_string="", headers=headers, body=BODY)

    # The signature itself is valid: only the target was added after signing.
    assert verify(request, lookup, now=NOW).access_key_id == ACCESS_KEY
    with pytest.raises(IncompleteSignature) as caught:
        verify(request, lookup, now=NOW, must_sign=("x-amz-target",))
    assert caught.value.message == (
        "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."
    )
    # A request that signed it passes; one without the header at all is not refused here.
    verify(sign(), lookup, now=NOW, must_sign=("x-amz-target",))
    verify(without_header(request, "X-Amz-Target"), lookup, now=NOW, must_sign=("x-amz-target",))


def test_a_signed_target_cannot_be_changed() -> None:
    request = with_headers(
        sign(), X_Amz_Target="AmazonEC2ContainerRegistry_V20150921.CreateRepository"
    )

    with pytest.raises(InvalidSignature):
        verify(request, lookup, now=NOW, must_sign=("x-amz-target",))


def test_the_scope_date_must_match_the_request_date() -> None:
    request = sign()
    authorization = request.headers["Authorization"].replace("/20240524/", "/20240523/")

    with pytest.raises(InvalidSignature) as caught:
        verify(with_headers(request, Authorization=authorization), lookup, now=NOW)

    assert caught.value.message.startswith("Date in Credential scope does not match")


def test_error_messages_never_carry_secrets_or_signatures() -> None:
    request = sign(
        access_key=SESSION_ACCESS_KEY, secret_key=SESSION_SECRET_KEY, token=SESSION_TOKEN
    )
    signature = request.headers["Authorization"].rsplit("=", 1)[1]
    attempts = [
        replace(request, body=b"tampered"),
        with_headers(request, Authorization=f"Basic {SECRET_KEY}"),
        with_headers(request, Authorization=f"AWS4-HMAC-SHA256 {SECRET_KEY}"),
        with_headers(request, Authorization=f"{SECRET_KEY} Credential=x"),
    ]
    for attempt in attempts:
        with pytest.raises(AuthError) as caught:
            verify(attempt, lookup, now=NOW)
        for secret in (SECRET_KEY, SESSION_SECRET_KEY, SESSION_TOKEN, signature):
            assert secret not in str(caught.value)
            assert secret not in caught.value.message


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError):
        verify(sign(), lookup, now=NOW.replace(tzinfo=None))


# -- credential scope ------------------------------------------------------------------------


def test_parse_credential_scope() -> None:
    assert parse_credential_scope("AKID/20240101/us-east-1/ecr/aws4_request") == CredentialScope(
        access_key_id="AKID", date="20240101", region="us-east-1", service="ecr"
    )
    with pytest.raises(IncompleteSignature):
        parse_credential_scope("AKID/20240101/us-east-1/ecr")
    with pytest.raises(IncompleteSignature):
        parse_credential_scope("AKID/2024-01-01/us-east-1/ecr/aws4_request")
    with pytest.raises(IncompleteSignature):
        parse_credential_scope("/20240101/us-east-1/ecr/aws4_request")
    with pytest.raises(InvalidSignature):
        parse_credential_scope("AKID/20240101/us-east-1/ecr/aws5_request")


# -- query form (presigned URLs) -------------------------------------------------------------


def presigned_request(url: str, *, host: str | None = None) -> SignedRequest:
    parts = urlsplit(url)
    return SignedRequest("GET", parts.path, parts.query, {"Host": host or parts.netloc}, b"")


BLOB_URL = "https://registry.example:5000/v2/app/blobs/sha256:abc?download=1"


def test_presign_url_matches_botocores_own_query_signer() -> None:
    ours = presign_url(
        BLOB_URL,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region="us-east-1",
        service="ecr",
        expires_in=300,
        session_token=SESSION_TOKEN,
        now=NOW,
    )
    theirs = AWSRequest(method="GET", url=BLOB_URL)
    with botocore_clock(NOW):
        SigV4QueryAuth(
            Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN), "ecr", "us-east-1", expires=300
        ).add_auth(theirs)

    assert ours == theirs.url


def presign(*, at: datetime = NOW, expires_in: int = 300, token: str | None = None) -> str:
    return presign_url(
        BLOB_URL,
        access_key_id=SESSION_ACCESS_KEY if token else ACCESS_KEY,
        secret_access_key=SESSION_SECRET_KEY if token else SECRET_KEY,
        region="us-east-1",
        service="ecr",
        expires_in=expires_in,
        session_token=token,
        now=at,
    )


def test_a_presigned_url_verifies_until_it_expires() -> None:
    request = presigned_request(presign(expires_in=300))

    caller = verify_presigned(request, lookup, now=NOW + timedelta(seconds=300), service="ecr")

    assert caller == VerifiedCaller(ACCESS_KEY, "us-east-1", "ecr", None, NOW)
    # verify() recognises the query form by itself.
    assert verify(request, lookup, now=NOW) == caller


def test_an_expired_presigned_url_is_request_expired() -> None:
    request = presigned_request(presign(expires_in=300))

    with pytest.raises(RequestExpired) as caught:
        verify(request, lookup, now=NOW + timedelta(seconds=301))

    assert caught.value.aws_type == "RequestExpired"
    assert caught.value.message == "Request has expired."


def test_a_presigned_url_from_the_future_is_not_yet_current() -> None:
    request = presigned_request(presign(at=NOW + timedelta(minutes=20)))

    with pytest.raises(SignatureExpired) as caught:
        verify(request, lookup, now=NOW)

    assert caught.value.message.startswith("Signature not yet current: 20240524T122000Z")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("sha256:abc", "sha256:abd"),
        ("download=1", "download=2"),
        ("X-Amz-Expires=300", "X-Amz-Expires=3000"),
        ("X-Amz-Date=20240524T120000Z", "X-Amz-Date=20240524T120100Z"),
    ],
)
def test_a_tampered_presigned_url_is_an_invalid_signature(old: str, new: str) -> None:
    url = presign()
    assert old in url

    with pytest.raises(InvalidSignature):
        verify(presigned_request(url.replace(old, new)), lookup, now=NOW)


def test_a_presigned_url_is_bound_to_its_host() -> None:
    with pytest.raises(InvalidSignature):
        verify(presigned_request(presign(), host="other.example:5000"), lookup, now=NOW)


def test_a_presigned_url_with_a_session_token() -> None:
    url = presign(token=SESSION_TOKEN)

    caller = verify(presigned_request(url), lookup, now=NOW)

    assert caller.access_key_id == SESSION_ACCESS_KEY
    assert caller.session_token == SESSION_TOKEN


def test_a_presigned_url_with_an_unknown_key_is_an_unrecognized_client() -> None:
    url = presign_url(
        BLOB_URL,
        access_key_id="AKIANOTAKEYWEKNOW000",
        secret_access_key=SECRET_KEY,
        region="us-east-1",
        service="ecr",
        expires_in=60,
        now=NOW,
    )

    with pytest.raises(UnrecognizedClient):
        verify(presigned_request(url), lookup, now=NOW)


def test_a_presigned_url_missing_parameters_is_an_incomplete_signature() -> None:
    url = presign().replace("X-Amz-Expires=300&", "")

    with pytest.raises(IncompleteSignature) as caught:
        verify(presigned_request(url), lookup, now=NOW)

    assert "X-Amz-Expires" in caught.value.message


def test_a_presigned_url_and_an_authorization_header_together_are_refused() -> None:
    request = with_headers(
        presigned_request(presign()), Authorization=sign().headers["Authorization"]
    )

    with pytest.raises(IncompleteSignature):
        verify(request, lookup, now=NOW)


@pytest.mark.parametrize("expires_in", [0, 604_801])
def test_presign_url_refuses_lifetimes_aws_refuses(expires_in: int) -> None:
    with pytest.raises(ValueError):
        presign(expires_in=expires_in)


# -- end to end: real boto3 against a throwaway server that calls verify() -------------------


@dataclass
class Recorder:
    outcomes: list[VerifiedCaller | AuthError] = field(default_factory=list)


class _VerifyingHandler(BaseHTTPRequestHandler):
    recorder: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        path, _, query = self.path.partition("?")
        request = SignedRequest(
            method=self.command,
            path=path,
            query_string=query,
            headers=dict(self.headers.items()),
            body=body,
        )
        try:
            caller = verify(
                request, lookup, now=datetime.now(UTC), service="ecr", region="us-east-1"
            )
        except AuthError as error:
            self.recorder.outcomes.append(error)
            self._answer(error.http_status, {"__type": error.aws_type, "message": error.message})
        else:
            self.recorder.outcomes.append(caller)
            self._answer(200, {"repositories": []})

    def _answer(self, status: int, document: dict[str, object]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ecr_endpoint() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    handler = type("Handler", (_VerifyingHandler,), {"recorder": recorder})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_real_boto3_requests_verify(ecr_endpoint: tuple[str, Recorder]) -> None:
    endpoint, recorder = ecr_endpoint
    client = boto3.session.Session().client(
        "ecr",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"total_max_attempts": 1}),
    )

    response = client.describe_repositories(repositoryNames=["app", "team/service"])

    assert response["repositories"] == []
    [outcome] = recorder.outcomes
    assert isinstance(outcome, VerifiedCaller)
    assert (outcome.access_key_id, outcome.service, outcome.region) == (
        ACCESS_KEY,
        "ecr",
        "us-east-1",
    )


def test_real_boto3_requests_with_a_session_token_verify(
    ecr_endpoint: tuple[str, Recorder],
) -> None:
    endpoint, recorder = ecr_endpoint
    client = boto3.session.Session().client(
        "ecr",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=SESSION_ACCESS_KEY,
        aws_secret_access_key=SESSION_SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        config=Config(retries={"total_max_attempts": 1}),
    )

    client.get_authorization_token()

    [outcome] = recorder.outcomes
    assert isinstance(outcome, VerifiedCaller)
    assert outcome.session_token == SESSION_TOKEN


@pytest.mark.parametrize(
    ("access_key", "secret_key", "code"),
    [
        (ACCESS_KEY, "not-the-secret", "InvalidSignatureException"),
        ("AKIANOTAKEYWEKNOW000", SECRET_KEY, "UnrecognizedClientException"),
    ],
)
def test_real_boto3_requests_with_bad_credentials_are_refused(
    ecr_endpoint: tuple[str, Recorder], access_key: str, secret_key: str, code: str
) -> None:
    endpoint, recorder = ecr_endpoint
    client = boto3.session.Session().client(
        "ecr",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"total_max_attempts": 1}),
    )

    with pytest.raises(ClientError) as caught:
        client.describe_repositories()

    assert caught.value.response["Error"]["Code"] == code
    [outcome] = recorder.outcomes
    assert isinstance(outcome, AuthError)
    assert outcome.aws_type == code
