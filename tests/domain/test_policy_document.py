"""Policy documents: what IAM and ECR refuse, with their codes and words, and what a valid
document reads as."""

from __future__ import annotations

import json

import pytest

from cargohold.domain.policy import (
    INLINE_POLICY_SIZE,
    INVALID_PARAMETER,
    LIMIT_EXCEEDED,
    MALFORMED_POLICY_DOCUMENT,
    PolicyError,
    PolicyKind,
    check_inline_size,
    parse_policy,
    policy_size,
)
from cargohold.domain.policy import errors as messages

V12 = "2012-10-17"
BUCKET = "arn:aws:s3:::example_bucket"
REPO = "arn:aws:ecr:us-east-1:123456789012:repository/app"
ALICE = "arn:aws:iam::123456789012:user/alice"


def document(*statements: dict[str, object], **top: object) -> str:
    body: dict[str, object] = {"Version": V12, **top}
    body["Statement"] = statements[0] if len(statements) == 1 else list(statements)
    return json.dumps(body)


def allow(**elements: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET, **elements}


def refusal(text: str, kind: PolicyKind = PolicyKind.MANAGED) -> PolicyError:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, kind)
    return raised.value


# -- what IAM refuses, and how it says so --------------------------------------------------------

SYNTAX = messages.SYNTAX_ERRORS
LEGACY = messages.LEGACY_PARSING


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json at all", SYNTAX),
        ("[]", SYNTAX),
        ('"a string"', SYNTAX),
        (json.dumps({"Version": V12}), SYNTAX),
        (json.dumps({"Version": V12, "Statement": []}), SYNTAX),
        (json.dumps({"Version": V12, "Statement": ["text"]}), SYNTAX),
        (json.dumps({"Version": "2013-10-17", "Statement": allow()}), SYNTAX),
        (document(allow(), Extra="x"), SYNTAX),
        (document(allow(), Id=["list"]), SYNTAX),
        (document(allow(Extra="x")), SYNTAX),
        (document(allow(effect="Allow")), SYNTAX),
        (document(allow(Effect="Permit")), SYNTAX),
        (document({"Action": "s3:ListBucket", "Resource": BUCKET}), SYNTAX),
        (document(allow(NotAction="s3:GetObject")), SYNTAX),
        (document(allow(NotResource="*")), SYNTAX),
        (document(allow(Action={"a": "b"})), SYNTAX),
        (document(allow(Action=[["s3:ListBucket"]])), SYNTAX),
        (document(allow(Resource=[BUCKET, {}])), SYNTAX),
        (document(allow(Sid=["a"])), SYNTAX),
        (document(allow(Condition=[])), SYNTAX),
        (document(allow(Condition="x")), SYNTAX),
        (document(allow(Condition={"StringEquals": "x"})), SYNTAX),
        (document(allow(Condition={"StringEquals": {"k": {}}})), SYNTAX),
        (document(allow(Condition={"StringEquals": {"k": None}})), SYNTAX),
        (document(allow(Condition={"StringEquals": {"k": [["x"]]}})), SYNTAX),
        (document(allow(Condition={"StringEqualz": {"k": "x"}})), SYNTAX),
        (document(allow(Condition={"ForAnyValue::StringEquals": {"k": "x"}})), SYNTAX),
        (document(allow(Condition={"NullIfExists": {"k": "true"}})), SYNTAX),
        (json.dumps({"Statement": allow()}), messages.VERSION_TOO_OLD),
        (json.dumps({"Version": "2008-10-17", "Statement": allow()}), messages.VERSION_TOO_OLD),
        (document(allow(Effect="allow")), LEGACY),
        (document(allow(Effect="DENY")), LEGACY),
        (document(allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "soon"}})), LEGACY),
        (document(allow(Condition={"DateLessThan": {"aws:CurrentTime": "2024-13-40"}})), LEGACY),
        (document(allow(Resource="arn:aws:s3::example_bucket")), LEGACY),
        (document(allow(Resource="arn:aws::::example_bucket")), LEGACY),
        (document(allow(Sid="a"), allow(Sid="a")), messages.SID_NOT_UNIQUE),
        (document(allow(Sid="has spaces")), messages.SID_NOT_ALPHANUMERIC),
        (document(allow(Sid="dash-ed")), messages.SID_NOT_ALPHANUMERIC),
        (document(allow(Action=[])), messages.NO_ACTIONS),
        (document({"Effect": "Allow", "Resource": BUCKET}), messages.NO_ACTIONS),
        (document({"Effect": "Allow", "Action": "s3:ListBucket"}), messages.NO_RESOURCES),
        (document(allow(Resource=[])), messages.NO_RESOURCES),
        (document(allow(Resource="bucket")), 'Resource bucket must be in ARN format or "*".'),
        (document(allow(Resource="")), 'Resource  must be in ARN format or "*".'),
        (
            document(allow(Resource="arn:aws-cn:s3:::b")),
            'Partition "aws-cn" is not valid for resource "arn:aws-cn:s3:::b".',
        ),
        (
            document(allow(Resource="x:y")),
            'Partition "y" is not valid for resource "arn:y:*:*:*:*".',
        ),
        (document(allow(Resource="arn:aws")), messages.RESOURCE_VENDOR),
        (document(allow(Resource="arn:aws:ec*:us-east-1:1:x")), messages.RESOURCE_VENDOR),
        (
            document(allow(Resource="arn:aws:iam:us-east-1::user/a")),
            "IAM resource arn:aws:iam:us-east-1::user/a cannot contain region information.",
        ),
        (document(allow(Action="ListBucket")), messages.ACTION_WITHOUT_VENDOR),
        (document(allow(Action="")), messages.ACTION_WITHOUT_VENDOR),
        (document(allow(Action="s3:List:Bucket")), messages.ACTION_COLONS),
        (document(allow(Action="s 3:ListBucket")), "Vendor s 3 is not valid"),
        (document(allow(Principal="*")), messages.SHOULD_NOT_SPECIFY_PRINCIPAL),
        (document(allow(NotPrincipal={"AWS": ALICE})), messages.SHOULD_NOT_SPECIFY_PRINCIPAL),
    ],
)
def test_iam_refuses_with_its_message(text: str, message: str) -> None:
    error = refusal(text)
    assert (error.code, error.message, error.reason) == (
        MALFORMED_POLICY_DOCUMENT,
        message,
        message,
    )


def test_the_first_fault_in_iams_order_is_the_one_reported() -> None:
    # Missing Version is reported before a lower-case Effect, which comes before duplicate Sids.
    text = json.dumps({"Statement": [allow(Effect="allow", Sid="a"), allow(Sid="a")]})
    assert refusal(text).message == messages.VERSION_TOO_OLD
    text = document(allow(Effect="allow", Sid="a"), allow(Sid="a"))
    assert refusal(text).message == LEGACY
    # A bad action vendor is reported after a missing resource.
    text = document({"Effect": "Allow", "Action": "nope"}, allow())
    assert refusal(text).message == messages.NO_RESOURCES


@pytest.mark.parametrize(
    "text",
    [
        document(allow()),
        document(allow(Resource=[BUCKET, "*"])),
        document(allow(Action="*")),
        document(allow(Action=["s3:List*", "ecr:Get?"], Sid="Read1")),
        document(allow(Resource="arn:aws:ecr:*:*:repository/*")),
        document(allow(Resource="arn:aws:iam::123456789012:user/*")),
        document({"Effect": "Deny", "NotAction": "iam:*", "NotResource": BUCKET}),
        document(allow(Condition={})),
        document(allow(Condition={"Unknown": {}})),
        document(allow(Condition={"StringEquals": {}})),
        document(allow(Condition={"DateGreaterThan": {"aws:CurrentTime": []}})),
        document(allow(Condition={"Bool": {"aws:SecureTransport": False}})),
        document(allow(Condition={"NumericLessThan": {"s3:max-keys": 10}})),
        document(allow(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}})),
        document(allow(Condition={"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})),
        document(allow(Condition={"DateLessThan": {"aws:EpochTime": "1893456000"}})),
        document(allow(Sid=""), Id="anything goes"),
        document(allow(Sid="A1"), allow(Sid="B2")),
    ],
)
def test_valid_identity_policies(text: str) -> None:
    assert parse_policy(text, PolicyKind.MANAGED).statements


# -- principals by kind of policy ----------------------------------------------------------------


def trust(**elements: object) -> dict[str, object]:
    principal = {"Service": "ecs-tasks.amazonaws.com"}
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **elements}


def grant(principal: object, **elements: object) -> dict[str, object]:
    return {"Effect": "Allow", "Principal": principal, "Action": "ecr:BatchGetImage", **elements}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (document({"Effect": "Allow", "Action": "sts:AssumeRole"}), messages.MISSING_PRINCIPAL),
        (document(trust(Resource="*")), messages.prohibited_field("Resource")),
        (document(trust(NotResource=REPO)), messages.prohibited_field("NotResource")),
        (
            document(trust(Principal={"AWS": "arn:aws:iam::123456789012:user/*"})),
            'Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:user/*"',
        ),
        (
            document(trust(Principal={"AWS": "alice"})),
            'Invalid principal in policy: "AWS":"alice"',
        ),
        (document(trust(Principal={"aws": ALICE})), SYNTAX),
        (document(trust(Principal={})), SYNTAX),
        (document(trust(Principal="everyone")), SYNTAX),
        (document(trust(Principal={"AWS": ALICE}, NotPrincipal={"AWS": ALICE})), SYNTAX),
    ],
)
def test_trust_policies_need_principals_and_refuse_resources(text: str, message: str) -> None:
    error = refusal(text, PolicyKind.TRUST)
    assert (error.code, error.message) == (MALFORMED_POLICY_DOCUMENT, message)


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": "123456789012"},
        {"AWS": "arn:aws:iam::123456789012:root"},
        {"AWS": ALICE},
        {"AWS": "arn:aws:iam::123456789012:user/division/team/alice"},
        {"AWS": "arn:aws:iam::123456789012:role/deploy"},
        {"AWS": "arn:aws:sts::123456789012:assumed-role/deploy/session-1"},
        {"AWS": ["123456789012", "210987654321"]},
        {"Service": "ecs-tasks.amazonaws.com"},
        {"Service": ["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"]},
        {"Federated": "cognito-identity.amazonaws.com"},
    ],
)
def test_valid_principals(principal: object) -> None:
    assert parse_policy(document(grant(principal)), PolicyKind.REPOSITORY).statements


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": "12345678901"},
        {"AWS": "arn:aws:iam::*:root"},
        {"AWS": "arn:aws:iam::123456789012:*"},
        {"AWS": "arn:aws:iam::123456789012:role/dep*"},
        {"AWS": "arn:aws:iam::123456789012:group/devs"},
        {"AWS": "arn:aws:s3:::bucket"},
        {"Service": "ECS Tasks"},
        {"Service": "*"},
    ],
)
def test_invalid_principals(principal: object) -> None:
    error = refusal(document(grant(principal)), PolicyKind.TRUST)
    assert error.message.startswith("Invalid principal in policy: ")


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (grant("*", Resource=REPO), messages.prohibited_field("Resource")),
        ({"Effect": "Allow", "Action": "ecr:*"}, messages.MISSING_PRINCIPAL),
        (grant({"AWS": "arn:aws:iam::123456789012:user/*"}), None),
        (grant("*", Action="pull"), messages.ACTION_WITHOUT_VENDOR),
        (grant("*", Effect="allow"), LEGACY),
    ],
)
def test_ecr_repository_policies_refused_with_ecrs_one_message(
    statement: dict[str, object], reason: str | None
) -> None:
    error = refusal(document(statement), PolicyKind.REPOSITORY)
    assert (error.code, error.message) == (INVALID_PARAMETER, messages.INVALID_REPOSITORY_POLICY)
    assert error.message == (
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
        "'Invalid repository policy provided'"
    )
    if reason is not None:
        assert error.reason == reason


def test_ecr_registry_policies_need_resources() -> None:
    error = refusal(document(grant({"AWS": "123456789012"})), PolicyKind.REGISTRY)
    assert (error.code, error.message) == (INVALID_PARAMETER, messages.INVALID_REGISTRY_POLICY)
    assert error.reason == messages.NO_RESOURCES
    statement = grant({"AWS": "123456789012"}, Action="ecr:ReplicateImage", Resource=REPO)
    assert parse_policy(document(statement), PolicyKind.REGISTRY).statements


def test_resource_policies_take_either_version_or_none() -> None:
    statement = grant({"AWS": ALICE})
    for top in ({"Version": "2008-10-17"}, {"Version": V12}, {}):
        text = json.dumps({**top, "Statement": [statement]})
        assert parse_policy(text, PolicyKind.REPOSITORY).version == top.get("Version")
        assert parse_policy(text, PolicyKind.TRUST).statements
    # ECR takes Sids that IAM would not.
    assert parse_policy(document(grant("*", Sid="pull-only")), PolicyKind.REPOSITORY)


# -- sizes ------------------------------------------------------------------------------------


def padded(size: int) -> str:
    """A managed policy of exactly `size` characters as IAM counts them."""
    base = document(allow(Sid="S"))
    pad = size - policy_size(base)
    assert pad >= 0
    return document(allow(Sid="S" + "x" * pad))


def test_managed_policy_size_limit_leaves_out_white_space() -> None:
    assert parse_policy(padded(6144), PolicyKind.MANAGED)
    assert parse_policy(padded(6144).replace(",", ",    \n"), PolicyKind.MANAGED)
    error = refusal(padded(6145))
    assert (error.code, error.message) == (
        LIMIT_EXCEEDED,
        "Cannot exceed quota for PolicySize: 6144",
    )
    assert policy_size(' { "a" :\t"b c" }\n') == 10


def test_trust_policy_size_limit() -> None:
    statement = trust(Sid="x" * 2100)
    error = refusal(document(statement), PolicyKind.TRUST)
    assert (error.code, error.message) == (
        LIMIT_EXCEEDED,
        "Cannot exceed quota for ACLSizePerRole: 2048",
    )


def test_ecr_policy_size_limit() -> None:
    text = document(grant("*", Sid="x" * 10300))
    error = refusal(text, PolicyKind.REPOSITORY)
    assert error.code == INVALID_PARAMETER
    assert "10240" in error.message


@pytest.mark.parametrize(("owner", "limit"), sorted(INLINE_POLICY_SIZE.items()))
def test_inline_policies_count_together(owner: str, limit: int) -> None:
    assert owner in ("user", "group", "role")
    half = "x" * (limit // 2)
    check_inline_size([half, half], owner, "someone")  # type: ignore[arg-type]
    with pytest.raises(PolicyError) as raised:
        check_inline_size([half, half, "y"], owner, "someone")  # type: ignore[arg-type]
    assert raised.value.code == LIMIT_EXCEEDED
    assert (
        raised.value.message == f"Maximum policy size of {limit} bytes exceeded for {owner} someone"
    )


# -- what a valid document reads as -------------------------------------------------------------


def test_statements_read_as_values() -> None:
    text = document(
        {
            "Sid": "Pull",
            "Effect": "Allow",
            "Principal": {"AWS": [ALICE, "210987654321"], "Service": "ecs-tasks.amazonaws.com"},
            "NotAction": ["ecr:PutImage", "ecr:Delete*"],
            "Condition": {
                "IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]},
                "Bool": {"aws:SecureTransport": True},
            },
        },
        {"Effect": "Deny", "NotPrincipal": {"AWS": ALICE}, "Action": "ecr:*"},
        Id="repo-policy",
    )
    policy = parse_policy(text, PolicyKind.REPOSITORY)
    assert (policy.version, policy.id, policy.variables) == (V12, "repo-policy", True)
    first, second = policy.statements
    assert (first.sid, first.effect, first.not_actions) == ("Pull", "Allow", True)
    assert first.actions == ("ecr:PutImage", "ecr:Delete*")
    assert first.resources is None
    assert first.principals is not None
    assert first.principals.aws == (ALICE, "210987654321")
    assert first.principals.services == ("ecs-tasks.amazonaws.com",)
    ip, secure = first.conditions
    assert (ip.operator.base, ip.key, ip.values) == (
        "IpAddress",
        "aws:SourceIp",
        ("203.0.113.0/24", "2001:db8::/32"),
    )
    assert (secure.operator.base, secure.values) == ("Bool", ("true",))
    assert (second.effect, second.not_principals, second.actions) == ("Deny", True, ("ecr:*",))
    assert policy.principal_arns() == (ALICE,)


def test_a_single_statement_object_and_identity_resources() -> None:
    text = document({"Effect": "Deny", "Action": "ecr:*", "NotResource": [REPO, "*"]})
    (statement,) = parse_policy(text, PolicyKind.INLINE).statements
    assert (statement.resources, statement.not_resources) == ((REPO, "*"), True)
    assert statement.principals is None
    assert statement.sid is None


def test_without_version_2012_variables_are_text() -> None:
    text = json.dumps({"Statement": grant("*")})
    assert parse_policy(text, PolicyKind.REPOSITORY).variables is False
    text = json.dumps({"Version": "2008-10-17", "Statement": grant("*")})
    assert parse_policy(text, PolicyKind.REPOSITORY).variables is False


def test_an_unknown_operator_with_nothing_under_it_is_dropped() -> None:
    text = document(allow(Condition={"Whatever": {}, "StringEquals": {"aws:username": "a"}}))
    (statement,) = parse_policy(text, PolicyKind.MANAGED).statements
    assert [c.operator.name for c in statement.conditions] == ["StringEquals"]


READ_ONLY = {
    "Version": V12,
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:GetRepositoryPolicy",
                "ecr:DescribeRepositories",
                "ecr:ListImages",
                "ecr:DescribeImages",
                "ecr:BatchGetImage",
                "ecr:GetLifecyclePolicy",
                "ecr:GetLifecyclePolicyPreview",
                "ecr:ListTagsForResource",
                "ecr:DescribeImageScanFindings",
            ],
            "Resource": "*",
        }
    ],
}


def test_an_aws_managed_policy_parses() -> None:
    policy = parse_policy(json.dumps(READ_ONLY), PolicyKind.MANAGED)
    assert len(policy.statements[0].actions) == 12


def test_a_repository_policy_may_repeat_a_sid_where_iam_refuses_it() -> None:
    repeated = document(grant("*", Sid="pull"), grant({"AWS": ALICE}, Sid="pull"))

    parsed = parse_policy(repeated, PolicyKind.REPOSITORY)

    assert [statement.sid for statement in parsed.statements] == ["pull", "pull"]
    for kind in (PolicyKind.MANAGED, PolicyKind.INLINE):
        assert refusal(document(allow(Sid="a"), allow(Sid="a")), kind).message == (
            messages.SID_NOT_UNIQUE
        )
    trust = document(
        {"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole", "Sid": "t"},
        {"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:TagSession", "Sid": "t"},
    )
    assert refusal(trust, PolicyKind.TRUST).message == messages.SID_NOT_UNIQUE
