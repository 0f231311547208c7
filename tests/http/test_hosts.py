"""Which account's registry a host name stands for, and the host of each account."""

from __future__ import annotations

import pytest

from cargohold.http.hosts import account_host, addressed_account, registry_host

OWN = "123456789012"
OTHER = "210987654321"


@pytest.mark.parametrize(
    ("host", "account"),
    [
        (f"{OTHER}.localhost:5000", OTHER),
        (f"{OTHER}.dkr.ecr.us-east-1.amazonaws.com", OTHER),
        (f"{OTHER}.Registry.Example.com", OTHER),
        ("127.0.0.1:5000", None),
        ("registry.example.com", None),
        (f"{OTHER}", None),  # a bare label is a host, not an account's
        ("12345.localhost", None),
        ("[::1]:5000", None),
        ("", None),
        (None, None),
    ],
)
def test_addressed_account(host: str | None, account: str | None) -> None:
    assert addressed_account(host) == account


def test_account_hosts() -> None:
    assert registry_host("http://127.0.0.1:5000") == "127.0.0.1:5000"
    assert account_host("127.0.0.1:5000", OWN, primary_account=OWN) == "127.0.0.1:5000"
    assert account_host("127.0.0.1:5000", OTHER, primary_account=OWN) == f"{OTHER}.localhost:5000"
    assert account_host("[::1]:80", OTHER, primary_account=OWN) == f"{OTHER}.localhost:80"
    assert account_host("r.example.com", OTHER, primary_account=OWN) == f"{OTHER}.r.example.com"
    assert (
        account_host("r.example.com:8443", OTHER, primary_account=OWN)
        == f"{OTHER}.r.example.com:8443"
    )
