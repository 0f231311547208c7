"""The one authorization decision, before the IAM issue: the resource's account may do all."""

from __future__ import annotations

import pytest

from cargohold.domain.principal import Principal, repository_arn
from cargohold.service.authz import (
    Authorizer,
    denial_message,
    principal_context,
    resource_account,
)

pytestmark = pytest.mark.anyio

ACCOUNT = "123456789012"
BOB = Principal(
    account_id=ACCOUNT,
    arn=f"arn:aws:iam::{ACCOUNT}:user/bob",
    principal_id="AIDAAAAAAAAAAAAAAAAAA",
    access_key_id="AKIAAAAAAAAAAAAAAAAA",
    username="bob",
)
MALLORY = Principal(
    account_id="210987654321",
    arn="arn:aws:iam::210987654321:user/mallory",
    principal_id="AIDABBBBBBBBBBBBBBBBB",
    username="mallory",
)


async def test_the_resources_account_is_allowed() -> None:
    decision = await Authorizer(lambda: 0.0).authorize(
        BOB, "ecr:PutImage", repository_arn("us-east-1", ACCOUNT, "team/app")
    )
    assert decision.allowed and decision.message == ""


async def test_other_accounts_are_denied_with_awss_message() -> None:
    resource = repository_arn("us-east-1", ACCOUNT, "team/app")
    decision = await Authorizer(lambda: 0.0).authorize(MALLORY, "ecr:BatchGetImage", resource, {})
    assert not decision.allowed and not decision.explicit_deny
    assert decision.message == (
        "User: arn:aws:iam::210987654321:user/mallory is not authorized to perform: "
        f"ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app "
        "because no resource-based policy allows the ecr:BatchGetImage action"
    )


@pytest.mark.parametrize("resource", ["", "not-an-arn", "arn:aws:s3:::bucket/key"])
async def test_resources_without_an_account_are_denied(resource: str) -> None:
    assert not (await Authorizer(lambda: 0.0).authorize(BOB, "ecr:X", resource)).allowed


def test_helpers() -> None:
    assert resource_account(f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/a/b:c") == ACCOUNT
    assert resource_account("arn:aws:s3:::bucket") is None
    assert denial_message(BOB, "ecr:X", "arn:r") == (
        f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: ecr:X "
        "on resource: arn:r"
    )
    context = principal_context(BOB, 1_700_000_000.5)
    assert context == {
        "aws:PrincipalArn": BOB.arn,
        "aws:PrincipalAccount": ACCOUNT,
        "aws:userid": BOB.principal_id,
        "aws:username": "bob",
        "aws:CurrentTime": "2023-11-14T22:13:20Z",
        "aws:EpochTime": "1700000000",
    }
