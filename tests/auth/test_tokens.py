"""Registry tokens: issue, verify, expiry, tampering, and the Basic header that carries them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from cargohold.auth.errors import RegistryTokenError, TokenExpired, TokenInvalid
from cargohold.auth.secretbox import SecretBox
from cargohold.auth.tokens import (
    TOKEN_LIFETIME,
    TokenClaims,
    TokenSigner,
    encode_authorization_token,
    parse_basic_authorization,
)

KEY = bytes(range(32))
NOW = datetime(2024, 5, 24, 12, 0, 0, tzinfo=UTC)
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CALLER = {
    "account_id": "123456789012",
    "principal_arn": "arn:aws:iam::123456789012:user/ci/podman-pusher",
    "principal_id": "AIDAJQABLZS4A3QDU576Q",
    "access_key_id": "AKIAIOSFODNN7EXAMPLE",
}


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(KEY)


def issue(signer: TokenSigner, **overrides: object) -> tuple[str, datetime]:
    arguments: dict[str, object] = {**CALLER, "now": NOW, **overrides}
    return signer.issue(**arguments)  # type: ignore[arg-type]


def test_round_trip(signer: TokenSigner) -> None:
    password, expires_at = issue(signer)

    claims = signer.verify(password, now=NOW + timedelta(hours=1))

    assert claims == TokenClaims(
        account_id="123456789012",
        principal_arn="arn:aws:iam::123456789012:user/ci/podman-pusher",
        principal_id="AIDAJQABLZS4A3QDU576Q",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        session_token_id=None,
        issued_at=NOW,
        expires_at=NOW + timedelta(hours=12),
    )
    assert expires_at == claims.expires_at


def test_round_trip_with_a_session(signer: TokenSigner) -> None:
    password, _ = issue(signer, access_key_id="ASIAIOSFODNN7EXAMPLE", session_token_id="sess-42")

    claims = signer.verify(password, now=NOW)

    assert claims.access_key_id == "ASIAIOSFODNN7EXAMPLE"
    assert claims.session_token_id == "sess-42"


def test_tokens_last_twelve_hours(signer: TokenSigner) -> None:
    password, expires_at = issue(signer)

    assert timedelta(hours=12) == TOKEN_LIFETIME
    assert expires_at == NOW + timedelta(hours=12)
    signer.verify(password, now=NOW + timedelta(hours=12) - timedelta(seconds=1))
    with pytest.raises(TokenExpired) as caught:
        signer.verify(password, now=NOW + timedelta(hours=12))
    assert caught.value.message == (
        "Your authorization token has expired. Reauthenticate and try again."
    )
    assert caught.value.http_status == 401


def test_a_custom_lifetime(signer: TokenSigner) -> None:
    password, expires_at = issue(signer, lifetime=timedelta(minutes=5))

    assert expires_at == NOW + timedelta(minutes=5)
    with pytest.raises(TokenExpired):
        signer.verify(password, now=NOW + timedelta(minutes=5))


def test_times_are_whole_seconds_in_utc(signer: TokenSigner) -> None:
    from zoneinfo import ZoneInfo

    local_now = (NOW + timedelta(microseconds=700_000)).astimezone(ZoneInfo("Europe/Paris"))
    password, expires_at = issue(signer, now=local_now)

    claims = signer.verify(password, now=NOW)

    assert claims.issued_at == NOW
    assert claims.issued_at.tzinfo == UTC
    assert expires_at == NOW + TOKEN_LIFETIME


def test_every_single_character_change_is_rejected(signer: TokenSigner) -> None:
    password, _ = issue(signer)

    for position in range(len(password)):
        replacement = "A" if password[position] != "A" else "B"
        tampered = password[:position] + replacement + password[position + 1 :]
        with pytest.raises(TokenInvalid):
            signer.verify(tampered, now=NOW)


def test_rewriting_the_claims_without_the_key_is_rejected(signer: TokenSigner) -> None:
    password, _ = issue(signer)
    version, payload, mac = password.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["r"] = "arn:aws:iam::123456789012:root"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    with pytest.raises(TokenInvalid):
        signer.verify(f"{version}.{forged_payload}.{mac}", now=NOW)


def test_a_token_from_another_key_is_rejected(signer: TokenSigner) -> None:
    password, _ = issue(TokenSigner(bytes(32)))

    with pytest.raises(TokenInvalid) as caught:
        signer.verify(password, now=NOW)

    assert caught.value.http_status == 401


@pytest.mark.parametrize(
    "password",
    ["", "garbage", "v1..", "v1.e30.", "v2.e30.AAAA", "v1.e30.AAAA", "v1.e30.AA AA", "x" * 10_000],
)
def test_malformed_tokens_are_rejected(signer: TokenSigner, password: str) -> None:
    with pytest.raises(TokenInvalid):
        signer.verify(password, now=NOW)


def test_the_token_holds_no_secret_and_stays_small(signer: TokenSigner) -> None:
    password, _ = issue(signer)
    authorization_token = encode_authorization_token(password)

    assert SECRET_ACCESS_KEY not in password
    assert KEY.hex() not in password
    assert len(authorization_token) < 1024
    assert "hidden" in repr(signer)


def test_signing_keys_must_be_long_enough() -> None:
    with pytest.raises(ValueError):
        TokenSigner(b"short")


def test_a_key_derived_from_the_secret_box_works() -> None:
    box = SecretBox(SecretBox.generate_master_key())
    signer = TokenSigner(box.derive_key("registry-token"))

    password, _ = issue(signer)

    assert signer.verify(password, now=NOW).principal_id == CALLER["principal_id"]


# -- the Basic header --------------------------------------------------------------------------


def test_the_get_authorization_token_value_is_what_podman_sends_back(signer: TokenSigner) -> None:
    password, _ = issue(signer)
    authorization_token = encode_authorization_token(password)

    assert base64.b64decode(authorization_token) == f"AWS:{password}".encode()
    username, sent_password = parse_basic_authorization(f"Basic {authorization_token}")
    assert (username, sent_password) == ("AWS", password)
    claims = signer.verify_authorization(f"Basic {authorization_token}", now=NOW)
    assert claims.access_key_id == CALLER["access_key_id"]


def test_basic_parsing_accepts_any_scheme_case_and_colons_in_passwords() -> None:
    encoded = base64.b64encode(b"AWS:pass:with:colons").decode()

    assert parse_basic_authorization(f"basic {encoded}") == ("AWS", "pass:with:colons")
    assert parse_basic_authorization(f"  BASIC   {encoded} ") == ("AWS", "pass:with:colons")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic",
        "Basic ",
        "Bearer abc.def.ghi",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:bad-utf8").decode(),
        "Basic " + base64.b64encode(b"AWS:x").decode()[:-1],
    ],
)
def test_malformed_basic_headers_are_rejected(header: str) -> None:
    with pytest.raises(TokenInvalid) as caught:
        parse_basic_authorization(header)

    assert isinstance(caught.value, RegistryTokenError)


def test_the_username_must_be_aws(signer: TokenSigner) -> None:
    password, _ = issue(signer)
    header = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()

    with pytest.raises(TokenInvalid):
        signer.verify_authorization(header, now=NOW)


def test_now_must_be_timezone_aware(signer: TokenSigner) -> None:
    password, _ = issue(signer)

    with pytest.raises(ValueError):
        signer.verify(password, now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError):
        issue(signer, now=NOW.replace(tzinfo=None))
