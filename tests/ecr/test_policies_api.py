"""ECR's policy operations through boto3 against a live server: Set/Get/DeleteRepositoryPolicy
(validation, named principals, the lock-out check and `force`), Put/Get/DeleteRegistryPolicy,
a deleted repository's policy, and a CREATE_ON_PUSH template's policy on the repository a push
creates."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from support.server import RegistryServer
from support.v2 import TinyImage, push_image

ACCOUNT = "123456789012"
INVALID_REPOSITORY_POLICY = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
    "'Invalid repository policy provided'"
)
INVALID_REGISTRY_POLICY = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
    "'Invalid registry policy provided'"
)


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def grant(principal: str, *actions: str, effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Principal": {"AWS": principal}, "Action": list(actions), **extra}


_NUMBERS = itertools.count()


@pytest.fixture
def repository(ecr: Any, request: pytest.FixtureRequest) -> str:
    name = f"policies/{request.node.originalname.replace('_', '-')}-{next(_NUMBERS)}"
    ecr.create_repository(repositoryName=name)
    return name


def test_set_get_delete_repository_policy(ecr: Any, repository: str) -> None:
    text = document(
        grant(
            f"arn:aws:iam::{ACCOUNT}:root",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            Sid="Pull",
        )
    )
    answer = ecr.set_repository_policy(repositoryName=repository, policyText=text)
    expected = (
        "{\n"
        '  "Version" : "2012-10-17",\n'
        '  "Statement" : [ {\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        f'      "AWS" : "arn:aws:iam::{ACCOUNT}:root"\n'
        "    },\n"
        '    "Action" : [ "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer" ],\n'
        '    "Sid" : "Pull"\n'
        "  } ]\n"
        "}"
    )
    assert answer["registryId"] == ACCOUNT and answer["repositoryName"] == repository
    assert answer["policyText"] == expected
    got = ecr.get_repository_policy(repositoryName=repository)
    assert (got["repositoryName"], got["policyText"]) == (repository, expected)
    assert json.loads(got["policyText"]) == json.loads(text)
    deleted = ecr.delete_repository_policy(repositoryName=repository)
    assert deleted["policyText"] == expected
    missing = (
        "RepositoryPolicyNotFoundException",
        f"Repository policy does not exist for the repository with name '{repository}' in "
        f"the registry with id '{ACCOUNT}'",
    )
    assert error_of(lambda: ecr.get_repository_policy(repositoryName=repository)) == missing
    assert error_of(lambda: ecr.delete_repository_policy(repositoryName=repository)) == missing


def test_a_policy_on_a_missing_repository(ecr: Any) -> None:
    code, message = error_of(
        lambda: ecr.set_repository_policy(
            repositoryName="policies/none", policyText=document(grant("*", "ecr:ListImages"))
        )
    )
    assert code == "RepositoryNotFoundException"
    assert message == (
        f"The repository with name 'policies/none' does not exist in the registry with id "
        f"'{ACCOUNT}'"
    )


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        document(),  # no statement
        document({"Effect": "Allow", "Action": "ecr:ListImages"}),  # no principal
        document({**grant("*", "ecr:ListImages"), "Resource": "*"}),  # ECR allows no Resource
        document(grant("*", "ecr:ListImages", effect="Maybe")),
        document(grant("arn:aws:iam::123456789012:user/*", "ecr:ListImages")),
        document(grant("*", "ListImages")),  # an action without its service
    ],
)
def test_invalid_repository_policies(ecr: Any, repository: str, text: str) -> None:
    assert error_of(
        lambda: ecr.set_repository_policy(repositoryName=repository, policyText=text)
    ) == ("InvalidParameterException", INVALID_REPOSITORY_POLICY)


def test_a_policy_naming_a_missing_principal(ecr: Any, repository: str) -> None:
    text = document(grant(f"arn:aws:iam::{ACCOUNT}:user/nobody-here", "ecr:ListImages"))
    assert error_of(
        lambda: ecr.set_repository_policy(repositoryName=repository, policyText=text)
    ) == (
        "InvalidParameterException",
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Principal not found'",
    )
    # Accounts this server does not hold cannot be checked, and are taken as given.
    other = document(grant("arn:aws:iam::999999999999:user/somebody", "ecr:ListImages"))
    ecr.set_repository_policy(repositoryName=repository, policyText=other)


def test_force_is_needed_to_lock_yourself_out(ecr: Any, repository: str) -> None:
    admin = f"arn:aws:iam::{ACCOUNT}:user/admin"
    lockout = document(grant(admin, "ecr:SetRepositoryPolicy", effect="Deny"))
    code, message = error_of(
        lambda: ecr.set_repository_policy(repositoryName=repository, policyText=lockout)
    )
    assert code == "InvalidParameterException" and "force" in message
    with pytest.raises(ClientError):
        ecr.get_repository_policy(repositoryName=repository)  # nothing was set
    ecr.set_repository_policy(repositoryName=repository, policyText=lockout, force=True)
    code, message = error_of(
        lambda: ecr.set_repository_policy(
            repositoryName=repository, policyText=document(grant("*", "ecr:ListImages"))
        )
    )
    assert code == "AccessDeniedException"
    assert message == (
        f"User: {admin} is not authorized to perform: ecr:SetRepositoryPolicy on resource: "
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{repository} with an explicit deny in a "
        "resource-based policy"
    )
    # The deny names SetRepositoryPolicy only: the policy can still be deleted.
    ecr.delete_repository_policy(repositoryName=repository)


def test_a_deleted_repository_takes_its_policy(ecr: Any) -> None:
    name = "policies/recreated"
    ecr.create_repository(repositoryName=name)
    ecr.set_repository_policy(repositoryName=name, policyText=document(grant("*", "ecr:*")))
    ecr.delete_repository(repositoryName=name)
    ecr.create_repository(repositoryName=name)
    code, _ = error_of(lambda: ecr.get_repository_policy(repositoryName=name))
    assert code == "RepositoryPolicyNotFoundException"
    ecr.delete_repository(repositoryName=name)


def test_registry_policy(ecr: Any) -> None:
    missing = (
        "RegistryPolicyNotFoundException",
        f"Registry policy does not exist in the registry with id '{ACCOUNT}'",
    )
    assert error_of(ecr.get_registry_policy) == missing
    assert error_of(ecr.delete_registry_policy) == missing
    text = document(
        grant(
            "arn:aws:iam::999999999999:root",
            "ecr:CreateRepository",
            "ecr:ReplicateImage",
            Resource=f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/*",
        )
    )
    answer = ecr.put_registry_policy(policyText=text)
    assert answer["registryId"] == ACCOUNT
    assert json.loads(answer["policyText"]) == json.loads(text)
    assert answer["policyText"].startswith('{\n  "Version" : "2012-10-17",\n')
    assert ecr.get_registry_policy()["policyText"] == answer["policyText"]
    assert ecr.delete_registry_policy()["policyText"] == answer["policyText"]
    assert error_of(ecr.get_registry_policy) == missing


@pytest.mark.parametrize(
    "text",
    [
        "{",
        # A registry policy names its resources.
        document(grant("arn:aws:iam::999999999999:root", "ecr:ReplicateImage")),
    ],
)
def test_invalid_registry_policies(ecr: Any, text: str) -> None:
    assert error_of(lambda: ecr.put_registry_policy(policyText=text)) == (
        "InvalidParameterException",
        INVALID_REGISTRY_POLICY,
    )


def test_a_template_policy_lands_on_the_repository_a_push_creates(
    ecr: Any, ecr_server: RegistryServer
) -> None:
    policy = document(grant(f"arn:aws:iam::{ACCOUNT}:root", "ecr:BatchGetImage"))
    ecr.create_repository_creation_template(
        prefix="policies-pushed",
        appliedFor=["CREATE_ON_PUSH"],
        repositoryPolicy=policy,
    )
    bad = error_of(
        lambda: ecr.create_repository_creation_template(
            prefix="policies-bad", appliedFor=["CREATE_ON_PUSH"], repositoryPolicy="{"
        )
    )
    assert bad == ("InvalidParameterException", INVALID_REPOSITORY_POLICY)
    try:
        with httpx.Client(base_url=ecr_server.url, auth=ecr_server.auth()) as client:
            answer = push_image(client, "policies-pushed/app", "v1", TinyImage.make("template"))
        assert answer.status_code == 201, answer.text
        got = ecr.get_repository_policy(repositoryName="policies-pushed/app")
        assert json.loads(got["policyText"]) == json.loads(policy)
    finally:
        ecr.delete_repository_creation_template(prefix="policies-pushed")
