"""The IAM API through boto3 against a live server: users, access keys, groups, roles, inline and
managed policies, versions, attachments, the AWS managed policies, paginators, every error code
with its status, and the query protocol's wire format."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import boto3
import botocore.session
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from support.server import RegistryServer

ACCOUNT = "123456789012"
IAM_NS = "{https://iam.amazonaws.com/doc/2010-05-08/}"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
EXECUTION = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
AWS_MANAGED = {
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser",
    READ_ONLY,
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
    EXECUTION,
}


def policy(*actions: str, resource: str = "*") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}],
    }


def trust(principal: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
    }


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    """(code, HTTP status, message) of the ClientError a call raises."""
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


# -- users and access keys ---------------------------------------------------------------------


def test_users(iam: Any) -> None:
    created = iam.create_user(UserName="u-alice", Path="/team/")["User"]
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/team/u-alice"
    assert created["UserId"].startswith("AIDA") and created["Path"] == "/team/"
    assert iam.get_user(UserName="U-ALICE")["User"] == created
    listed = iam.list_users(PathPrefix="/team/")["Users"]
    assert [u["UserName"] for u in listed] == ["u-alice"]
    # Without a name, GetUser is the caller.
    assert iam.get_user()["User"]["UserName"] == "admin"
    iam.delete_user(UserName="u-alice")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="u-alice")


def test_user_errors(iam: Any) -> None:
    iam.create_user(UserName="u-dup")
    assert error_of(lambda: iam.create_user(UserName="U-DUP")) == (
        "EntityAlreadyExists",
        409,
        "User with name U-DUP already exists.",
    )
    assert error_of(lambda: iam.get_user(UserName="u-ghost")) == (
        "NoSuchEntity",
        404,
        "The user with name u-ghost cannot be found.",
    )
    code, status, message = error_of(lambda: iam.create_user(UserName="bad name!"))
    assert (code, status) == ("ValidationError", 400)
    assert message == (
        "1 validation error detected: Value 'bad name!' at 'userName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
    )
    code, status, _ = error_of(lambda: iam.delete_user(UserName="admin"))
    assert (code, status) == ("ValidationError", 400)


def test_users_paginate(iam: Any) -> None:
    names = [f"u-page-{index}" for index in range(5)]
    for name in names:
        iam.create_user(UserName=name, Path="/paged/")
    first = iam.list_users(PathPrefix="/paged/", MaxItems=2)
    assert first["IsTruncated"] and len(first["Users"]) == 2
    pages = iam.get_paginator("list_users").paginate(
        PathPrefix="/paged/", PaginationConfig={"PageSize": 2}
    )
    seen = [user["UserName"] for page in pages for user in page["Users"]]
    assert seen == names


def test_access_keys(iam_server: RegistryServer, iam: Any) -> None:
    iam.create_user(UserName="u-keys")
    created = iam.create_access_key(UserName="u-keys")["AccessKey"]
    key, secret = created["AccessKeyId"], created["SecretAccessKey"]
    assert key.startswith("AKIA") and len(secret) == 40 and created["Status"] == "Active"
    listed = iam.list_access_keys(UserName="u-keys")["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [(key, "Active")]

    never = iam.get_access_key_last_used(AccessKeyId=key)
    assert never["UserName"] == "u-keys"
    assert never["AccessKeyLastUsed"] == {"ServiceName": "N/A", "Region": "N/A"}
    own = iam_server.sts_client(key=key, secret=secret)
    assert own.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/u-keys"
    used = iam.get_access_key_last_used(AccessKeyId=key)["AccessKeyLastUsed"]
    assert used["ServiceName"] == "sts" and used["Region"] == "us-east-1"
    assert "LastUsedDate" in used

    iam.update_access_key(UserName="u-keys", AccessKeyId=key, Status="Inactive")
    assert error_of(own.get_caller_identity)[:2] == ("InvalidClientTokenId", 403)
    iam.update_access_key(UserName="u-keys", AccessKeyId=key, Status="Active")
    assert own.get_caller_identity()["Account"] == ACCOUNT

    iam.create_access_key(UserName="u-keys")
    assert error_of(lambda: iam.create_access_key(UserName="u-keys")) == (
        "LimitExceeded",
        409,
        "Cannot exceed quota for AccessKeysPerUser: 2",
    )
    assert error_of(lambda: iam.delete_user(UserName="u-keys")) == (
        "DeleteConflict",
        409,
        "Cannot delete entity, must delete access keys first.",
    )
    # A key of another user is not this user's.
    iam.create_user(UserName="u-other")
    code, status, _ = error_of(lambda: iam.delete_access_key(UserName="u-other", AccessKeyId=key))
    assert (code, status) == ("NoSuchEntity", 404)
    for listed_key in iam.list_access_keys(UserName="u-keys")["AccessKeyMetadata"]:
        iam.delete_access_key(UserName="u-keys", AccessKeyId=listed_key["AccessKeyId"])
    assert error_of(own.get_caller_identity)[0] == "InvalidClientTokenId"
    iam.delete_user(UserName="u-keys")


def test_a_user_manages_its_own_keys(iam_server: RegistryServer, iam: Any) -> None:
    iam.create_user(UserName="u-self")
    # IAM's "manage your own access keys" policy, by policy variable.
    iam.put_user_policy(
        UserName="u-self",
        PolicyName="self",
        PolicyDocument=json.dumps(
            policy(
                "iam:GetUser",
                "iam:CreateAccessKey",
                "iam:ListAccessKeys",
                "iam:DeleteAccessKey",
                resource="arn:aws:iam::*:user/${aws:username}",
            )
        ),
    )
    created = iam.create_access_key(UserName="u-self")["AccessKey"]
    own = iam_server.iam_client(key=created["AccessKeyId"], secret=created["SecretAccessKey"])
    assert own.get_user()["User"]["UserName"] == "u-self"
    second = own.create_access_key()["AccessKey"]
    assert second["UserName"] == "u-self"
    keys = {k["AccessKeyId"] for k in own.list_access_keys()["AccessKeyMetadata"]}
    assert keys == {created["AccessKeyId"], second["AccessKeyId"]}
    own.delete_access_key(AccessKeyId=second["AccessKeyId"])


# -- groups and roles --------------------------------------------------------------------------


def test_groups(iam: Any) -> None:
    group = iam.create_group(GroupName="g-devs", Path="/teams/")["Group"]
    assert group["Arn"] == f"arn:aws:iam::{ACCOUNT}:group/teams/g-devs"
    assert group["GroupId"].startswith("AGPA")
    iam.create_user(UserName="g-alice")
    iam.add_user_to_group(GroupName="g-devs", UserName="g-alice")
    got = iam.get_group(GroupName="g-devs")
    assert got["Group"] == group
    assert [u["UserName"] for u in got["Users"]] == ["g-alice"]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="g-alice")["Groups"]] == [
        "g-devs"
    ]
    assert "g-devs" in [g["GroupName"] for g in iam.list_groups(PathPrefix="/teams/")["Groups"]]
    assert error_of(lambda: iam.delete_group(GroupName="g-devs"))[:2] == ("DeleteConflict", 409)
    iam.remove_user_from_group(GroupName="g-devs", UserName="g-alice")
    iam.delete_group(GroupName="g-devs")
    assert error_of(lambda: iam.get_group(GroupName="g-devs")) == (
        "NoSuchEntity",
        404,
        "The group with name g-devs cannot be found.",
    )


def test_roles(iam: Any) -> None:
    document = trust({"Service": "ecs-tasks.amazonaws.com"})
    role = iam.create_role(
        RoleName="r-exec",
        AssumeRolePolicyDocument=json.dumps(document),
        Description="pulls images",
        MaxSessionDuration=7200,
    )["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/r-exec"
    assert role["RoleId"].startswith("AROA") and role["MaxSessionDuration"] == 7200
    # IAM sends policy documents URL-encoded; boto3 hands them back as dicts.
    assert role["AssumeRolePolicyDocument"] == document
    got = iam.get_role(RoleName="r-exec")["Role"]
    assert got["Description"] == "pulls images" and got["AssumeRolePolicyDocument"] == document
    assert "r-exec" in [r["RoleName"] for r in iam.list_roles()["Roles"]]

    admin = iam.get_user()["User"]["Arn"]
    iam.update_assume_role_policy(
        RoleName="r-exec", PolicyDocument=json.dumps(trust({"AWS": admin}))
    )
    assert iam.get_role(RoleName="r-exec")["Role"]["AssumeRolePolicyDocument"] == trust(
        {"AWS": admin}
    )
    iam.update_role(RoleName="r-exec", MaxSessionDuration=3600)
    described = iam.update_role_description(RoleName="r-exec", Description="new")["Role"]
    assert described["Description"] == "new" and described["MaxSessionDuration"] == 3600

    assert error_of(
        lambda: iam.create_role(RoleName="R-EXEC", AssumeRolePolicyDocument=json.dumps(document))
    )[:2] == ("EntityAlreadyExists", 409)
    iam.delete_role(RoleName="r-exec")
    assert error_of(lambda: iam.get_role(RoleName="r-exec")) == (
        "NoSuchEntity",
        404,
        "The role with name r-exec cannot be found.",
    )


def test_malformed_trust_policies(iam: Any) -> None:
    code, status, message = error_of(
        lambda: iam.create_role(RoleName="r-bad", AssumeRolePolicyDocument="{not json")
    )
    assert (code, status, message) == ("MalformedPolicyDocument", 400, "Syntax errors in policy.")
    ghost = f"arn:aws:iam::{ACCOUNT}:user/nobody-here"
    assert error_of(
        lambda: iam.create_role(
            RoleName="r-bad", AssumeRolePolicyDocument=json.dumps(trust({"AWS": ghost}))
        )
    ) == ("MalformedPolicyDocument", 400, f'Invalid principal in policy: "AWS":"{ghost}"')
    code, _, _ = error_of(
        lambda: iam.create_role(
            RoleName="r-bad", AssumeRolePolicyDocument=json.dumps(policy("sts:AssumeRole"))
        )
    )
    assert code == "MalformedPolicyDocument"


# -- inline policies ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["User", "Group", "Role"])
def test_inline_policies(iam: Any, kind: str) -> None:
    name = f"inline-{kind.lower()}"
    if kind == "User":
        iam.create_user(UserName=name)
    elif kind == "Group":
        iam.create_group(GroupName=name)
    else:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust({"AWS": ACCOUNT})))
    entity = {f"{kind}Name": name}
    snake = kind.lower()
    document = policy("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
    getattr(iam, f"put_{snake}_policy")(
        **entity, PolicyName="pull", PolicyDocument=json.dumps(document)
    )
    got = getattr(iam, f"get_{snake}_policy")(**entity, PolicyName="pull")
    assert got[f"{kind}Name"] == name and got["PolicyName"] == "pull"
    assert got["PolicyDocument"] == document
    assert getattr(iam, f"list_{snake}_policies")(**entity)["PolicyNames"] == ["pull"]
    assert error_of(lambda: getattr(iam, f"delete_{kind.lower()}")(**entity)) == (
        "DeleteConflict",
        409,
        "Cannot delete entity, must delete policies first.",
    )
    getattr(iam, f"delete_{snake}_policy")(**entity, PolicyName="pull")
    assert getattr(iam, f"list_{snake}_policies")(**entity)["PolicyNames"] == []
    assert error_of(lambda: getattr(iam, f"get_{snake}_policy")(**entity, PolicyName="pull")) == (
        "NoSuchEntity",
        404,
        f"The {snake} policy with name pull cannot be found.",
    )
    getattr(iam, f"delete_{kind.lower()}")(**entity)


def test_malformed_inline_policies(iam: Any) -> None:
    iam.create_user(UserName="inline-bad")
    with_principal = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Resource": "*"}],
    }
    assert error_of(
        lambda: iam.put_user_policy(
            UserName="inline-bad", PolicyName="p", PolicyDocument=json.dumps(with_principal)
        )
    ) == ("MalformedPolicyDocument", 400, "Policy document should not specify a principal.")


# -- managed policies --------------------------------------------------------------------------


def test_the_aws_managed_policies(iam: Any) -> None:
    listed = iam.list_policies(Scope="AWS")["Policies"]
    assert {p["Arn"] for p in listed} == AWS_MANAGED
    execution = iam.get_policy(PolicyArn=EXECUTION)["Policy"]
    assert execution["PolicyName"] == "AmazonECSTaskExecutionRolePolicy"
    assert execution["Path"] == "/service-role/" and execution["DefaultVersionId"] == "v1"
    version = iam.get_policy_version(PolicyArn=EXECUTION, VersionId="v1")["PolicyVersion"]
    assert version["IsDefaultVersion"]
    assert version["Document"]["Statement"][0]["Action"] == [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    pull_only = iam.get_policy_version(
        PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly", VersionId="v1"
    )["PolicyVersion"]["Document"]
    assert pull_only["Statement"][0]["Action"] == [
        "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchImportUpstreamImage",
    ]
    pages = iam.get_paginator("list_policies").paginate(
        Scope="AWS", PaginationConfig={"PageSize": 2}
    )
    assert {p["Arn"] for page in pages for p in page["Policies"]} == AWS_MANAGED
    # AWS's policies are AWS's: no account may change them.
    assert error_of(lambda: iam.delete_policy(PolicyArn=READ_ONLY))[:2] == ("AccessDenied", 403)
    assert error_of(
        lambda: iam.create_policy_version(
            PolicyArn=READ_ONLY, PolicyDocument=json.dumps(policy("ecr:*"))
        )
    )[:2] == ("AccessDenied", 403)


def test_customer_managed_policies_and_versions(iam: Any) -> None:
    created = iam.create_policy(
        PolicyName="m-pull",
        Path="/ci/",
        PolicyDocument=json.dumps(policy("ecr:BatchGetImage")),
        Description="pull",
    )["Policy"]
    arn = created["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/ci/m-pull"
    assert created["PolicyId"].startswith("ANPA") and created["DefaultVersionId"] == "v1"
    assert created["AttachmentCount"] == 0 and created["IsAttachable"]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Description"] == "pull"
    assert arn in [p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]]
    assert error_of(
        lambda: iam.create_policy(PolicyName="M-PULL", PolicyDocument=json.dumps(policy("ecr:*")))
    ) == (
        "EntityAlreadyExists",
        409,
        "A policy called M-PULL already exists. Duplicate names are not allowed.",
    )

    v2 = iam.create_policy_version(
        PolicyArn=arn, PolicyDocument=json.dumps(policy("ecr:ListImages")), SetAsDefault=True
    )["PolicyVersion"]
    assert v2["VersionId"] == "v2" and v2["IsDefaultVersion"] and "Document" not in v2
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v2"
    got = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert got["Document"] == policy("ecr:BatchGetImage") and not got["IsDefaultVersion"]
    for _ in range(3):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(policy("ecr:X")))
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == ["v1", "v2", "v3", "v4", "v5"]
    assert error_of(
        lambda: iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(policy("ecr:Y")))
    )[:2] == ("LimitExceeded", 409)
    assert error_of(lambda: iam.delete_policy_version(PolicyArn=arn, VersionId="v2")) == (
        "DeleteConflict",
        409,
        "Cannot delete the default version of a policy.",
    )
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    for version in ("v2", "v3", "v4", "v5"):
        iam.delete_policy_version(PolicyArn=arn, VersionId=version)
    iam.delete_policy(PolicyArn=arn)
    assert error_of(lambda: iam.get_policy(PolicyArn=arn)) == (
        "NoSuchEntity",
        404,
        f"Policy {arn} was not found.",
    )


def test_malformed_managed_policies(iam: Any) -> None:
    no_resource = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*"}]}
    assert error_of(
        lambda: iam.create_policy(PolicyName="m-bad", PolicyDocument=json.dumps(no_resource))
    ) == ("MalformedPolicyDocument", 400, "Policy statement must contain resources.")
    code, status, message = error_of(lambda: iam.get_policy(PolicyArn="this-is-not-a-policy-arn"))
    assert (code, status) == ("InvalidInput", 400) and "this-is-not-a-policy-arn" in message


def test_attachments(iam: Any) -> None:
    iam.create_user(UserName="a-user")
    iam.create_group(GroupName="a-group")
    iam.create_role(
        RoleName="a-role",
        AssumeRolePolicyDocument=json.dumps(trust({"Service": "ecs-tasks.amazonaws.com"})),
    )
    iam.attach_user_policy(UserName="a-user", PolicyArn=READ_ONLY)
    iam.attach_group_policy(GroupName="a-group", PolicyArn=READ_ONLY)
    iam.attach_role_policy(RoleName="a-role", PolicyArn=EXECUTION)
    assert iam.list_attached_user_policies(UserName="a-user")["AttachedPolicies"] == [
        {"PolicyName": "AmazonEC2ContainerRegistryReadOnly", "PolicyArn": READ_ONLY}
    ]
    assert iam.list_attached_role_policies(RoleName="a-role")["AttachedPolicies"] == [
        {"PolicyName": "AmazonECSTaskExecutionRolePolicy", "PolicyArn": EXECUTION}
    ]
    assert [
        p["PolicyArn"]
        for p in iam.list_attached_group_policies(GroupName="a-group")["AttachedPolicies"]
    ] == [READ_ONLY]
    entities = iam.list_entities_for_policy(PolicyArn=READ_ONLY)
    assert [u["UserName"] for u in entities["PolicyUsers"]] == ["a-user"]
    assert [g["GroupName"] for g in entities["PolicyGroups"]] == ["a-group"]
    assert entities["PolicyRoles"] == []
    only_users = iam.list_entities_for_policy(PolicyArn=READ_ONLY, EntityFilter="User")
    assert "PolicyGroups" not in only_users
    assert iam.get_policy(PolicyArn=READ_ONLY)["Policy"]["AttachmentCount"] == 2
    attached = {p["Arn"] for p in iam.list_policies(OnlyAttached=True)["Policies"]}
    assert {READ_ONLY, EXECUTION} <= attached

    assert error_of(lambda: iam.delete_role(RoleName="a-role")) == (
        "DeleteConflict",
        409,
        "Cannot delete entity, must detach all policies first.",
    )
    missing = f"arn:aws:iam::{ACCOUNT}:policy/nothing"
    assert error_of(lambda: iam.attach_user_policy(UserName="a-user", PolicyArn=missing)) == (
        "NoSuchEntity",
        404,
        f"Policy {missing} does not exist or is not attachable.",
    )
    iam.detach_user_policy(UserName="a-user", PolicyArn=READ_ONLY)
    iam.detach_group_policy(GroupName="a-group", PolicyArn=READ_ONLY)
    iam.detach_role_policy(RoleName="a-role", PolicyArn=EXECUTION)
    assert error_of(lambda: iam.detach_role_policy(RoleName="a-role", PolicyArn=EXECUTION))[:2] == (
        "NoSuchEntity",
        404,
    )
    iam.delete_role(RoleName="a-role")


def test_at_most_ten_policies_per_user(iam: Any) -> None:
    iam.create_user(UserName="q-user")
    for index in range(10):
        arn = iam.create_policy(
            PolicyName=f"q-{index}", PolicyDocument=json.dumps(policy("ecr:ListImages"))
        )["Policy"]["Arn"]
        iam.attach_user_policy(UserName="q-user", PolicyArn=arn)
    assert error_of(lambda: iam.attach_user_policy(UserName="q-user", PolicyArn=READ_ONLY)) == (
        "LimitExceeded",
        409,
        "Cannot exceed quota for PoliciesPerUser: 10",
    )


# -- who may call IAM --------------------------------------------------------------------------


def test_session_token_credentials_cannot_call_iam(iam_server: RegistryServer, sts: Any) -> None:
    credentials = sts.get_session_token()["Credentials"]
    session = iam_server.iam_client(
        key=credentials["AccessKeyId"],
        secret=credentials["SecretAccessKey"],
        token=credentials["SessionToken"],
    )
    assert error_of(session.list_users)[:2] == ("InvalidClientTokenId", 403)


def test_a_role_session_calls_iam(iam_server: RegistryServer, iam: Any, sts: Any) -> None:
    admin = iam.get_user()["User"]["Arn"]
    role = iam.create_role(
        RoleName="r-iam-admin", AssumeRolePolicyDocument=json.dumps(trust({"AWS": admin}))
    )["Role"]
    iam.put_role_policy(
        RoleName="r-iam-admin", PolicyName="iam", PolicyDocument=json.dumps(policy("iam:*"))
    )
    credentials = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="ops")["Credentials"]
    session = iam_server.iam_client(
        key=credentials["AccessKeyId"],
        secret=credentials["SecretAccessKey"],
        token=credentials["SessionToken"],
    )
    assert "r-iam-admin" in [r["RoleName"] for r in session.list_roles()["Roles"]]
    # GetUser needs a name when the caller is not a user.
    code, status, message = error_of(session.get_user)
    assert (code, status) == ("ValidationError", 400) and "non-User credentials" in message


def test_unsigned_and_forged_requests(iam_server: RegistryServer) -> None:
    body = urlencode({"Action": "ListUsers", "Version": "2010-05-08"})
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    unsigned = httpx.post(iam_server.url + "/", content=body, headers=headers)
    assert unsigned.status_code == 403
    assert _error(unsigned)[0] == "MissingAuthenticationToken"
    forged = iam_server.iam_client(key="AKIAIOSFODNN7EXAMPLE", secret="x" * 40)
    assert error_of(forged.list_users) == (
        "InvalidClientTokenId",
        403,
        "The security token included in the request is invalid.",
    )
    creds = iam_server.admin_credentials()
    wrong = iam_server.iam_client(key=creds["AWS_ACCESS_KEY_ID"], secret="y" * 40)
    assert error_of(wrong.list_users)[:2] == ("SignatureDoesNotMatch", 403)


# -- the wire ----------------------------------------------------------------------------------


def _signed(iam_server: RegistryServer, params: dict[str, str]) -> httpx.Response:
    """A query-protocol request signed as boto3 signs it, sent as it is."""
    creds = iam_server.admin_credentials()
    request = AWSRequest(
        method="POST",
        url=iam_server.url + "/",
        data=urlencode({"Version": "2010-05-08", **params}),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(
        Credentials(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"]), "iam", "us-east-1"
    ).add_auth(request)
    return httpx.post(request.url, content=request.body, headers=dict(request.headers.items()))


def _error(response: httpx.Response) -> tuple[str, str, str, str]:
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{IAM_NS}ErrorResponse"
    error = root.find(f"{IAM_NS}Error")
    assert error is not None
    texts = [error.findtext(f"{IAM_NS}{name}") or "" for name in ("Type", "Code", "Message")]
    request_id = root.findtext(f"{IAM_NS}RequestId") or ""
    assert request_id == response.headers["x-amzn-RequestId"]
    return texts[1], texts[0], texts[2], request_id


def test_the_query_protocol_on_the_wire(iam_server: RegistryServer) -> None:
    created = _signed(iam_server, {"Action": "CreateUser", "UserName": "wire", "Path": "/w/"})
    assert created.status_code == 200
    assert created.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(created.content)
    assert root.tag == f"{IAM_NS}CreateUserResponse"
    user = root.find(f"{IAM_NS}CreateUserResult/{IAM_NS}User")
    assert user is not None and user.findtext(f"{IAM_NS}UserName") == "wire"
    created_at = user.findtext(f"{IAM_NS}CreateDate") or ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created_at)
    request_id = root.findtext(f"{IAM_NS}ResponseMetadata/{IAM_NS}RequestId")
    assert request_id == created.headers["x-amzn-RequestId"]

    listed = ElementTree.fromstring(_signed(iam_server, {"Action": "ListUsers"}).content)
    members = listed.findall(f"{IAM_NS}ListUsersResult/{IAM_NS}Users/{IAM_NS}member")
    assert "wire" in [m.findtext(f"{IAM_NS}UserName") for m in members]

    missing = _signed(iam_server, {"Action": "GetUser", "UserName": "no-such-user"})
    assert missing.status_code == 404
    code, kind, message, _ = _error(missing)
    assert (code, kind) == ("NoSuchEntity", "Sender")
    assert message == "The user with name no-such-user cannot be found."

    unknown = _signed(iam_server, {"Action": "FlyToTheMoon"})
    assert unknown.status_code == 400 and _error(unknown)[0] == "InvalidAction"
    without = _signed(iam_server, {"Action": "CreateUser"})
    assert without.status_code == 400
    assert _error(without)[:3] == (
        "ValidationError",
        "Sender",
        "1 validation error detected: Value null at 'userName' failed to satisfy constraint: "
        "Member must not be null",
    )


def test_flattened_parameters(iam_server: RegistryServer, iam: Any) -> None:
    """Lists arrive as `Name.member.N`: tags on CreateUser, policy ARNs on AssumeRole."""
    response = _signed(
        iam_server,
        {
            "Action": "CreateUser",
            "UserName": "tagged",
            "Tags.member.1.Key": "team",
            "Tags.member.1.Value": "registry",
        },
    )
    assert response.status_code == 200
    bad = _signed(
        iam_server,
        {"Action": "CreateUser", "UserName": "tagged2", "Tags.member.1.Value": "no key"},
    )
    assert bad.status_code == 400
    assert "tags.1.member.key" in _error(bad)[2]


def test_the_cargohold_profile_points_sts_and_iam_here(iam_server: RegistryServer) -> None:
    """The AWS profile the server writes names the registry as the STS and IAM endpoints too."""
    iam_server.admin_credentials()  # the profile exists once the server has started
    core = botocore.session.Session()
    core.set_config_variable("config_file", str(iam_server.data_dir.parent / "aws-config"))
    core.set_config_variable(
        "credentials_file", str(iam_server.data_dir.parent / "aws-credentials")
    )
    session = boto3.Session(botocore_session=core, profile_name="cargohold")
    for service in ("ecr", "sts", "iam"):
        assert session.client(service).meta.endpoint_url == iam_server.url  # type: ignore[call-overload]
    identity = session.client("sts").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/admin"
