"""The decision: identity-based and resource-based policies, within and across accounts, explicit
and implicit denials, conditions that flip a decision, Not- elements and policy variables."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from cargohold.domain.policy import (
    AuthorizationRequest,
    Caller,
    Context,
    Denial,
    Policy,
    PolicyDecision,
    PolicyKind,
    evaluate,
    global_context,
    parse_policy,
    request_tag_context,
    resource_tag_context,
)

A = "111111111111"
B = "222222222222"
REPO = f"arn:aws:ecr:us-east-1:{A}:repository/app"
OTHER_REPO = f"arn:aws:ecr:us-east-1:{A}:repository/other"
ALICE = Caller.from_arn(f"arn:aws:iam::{A}:user/alice")
CAROL = Caller.from_arn(f"arn:aws:iam::{A}:user/carol")
BOB = Caller.from_arn(f"arn:aws:iam::{B}:user/bob")
ROOT_A = Caller.from_arn(f"arn:aws:iam::{A}:root")
ROOT_B = Caller.from_arn(f"arn:aws:iam::{B}:root")
ROLE = f"arn:aws:iam::{A}:role/ci/deploy"
SESSION = Caller.from_arn(f"arn:aws:sts::{A}:assumed-role/deploy/build-42", role_arn=ROLE)
ECS = Caller.service("ecs-tasks.amazonaws.com")


def policy(
    kind: PolicyKind, *statements: Mapping[str, object], version: str = "2012-10-17"
) -> Policy:
    return parse_policy(json.dumps({"Version": version, "Statement": list(statements)}), kind)


def identity(*statements: Mapping[str, object]) -> Policy:
    return policy(PolicyKind.MANAGED, *statements)


def repository(*statements: Mapping[str, object], version: str = "2012-10-17") -> Policy:
    return policy(PolicyKind.REPOSITORY, *statements, version=version)


def allow(action: object = "ecr:*", resource: object = "*", **more: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def deny(action: object = "ecr:*", resource: object = "*", **more: object) -> dict[str, object]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **more}


def grant(principal: object, action: object = "ecr:*", **more: object) -> dict[str, object]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, **more}


def refuse(principal: object, action: object = "ecr:*", **more: object) -> dict[str, object]:
    return {"Effect": "Deny", "Principal": principal, "Action": action, **more}


def decide(
    caller: Caller,
    identity_policies: list[Policy] | None = None,
    resource_policies: list[Policy] | None = None,
    *,
    action: str = "ecr:PutImage",
    resource: str = REPO,
    context: Context | None = None,
) -> PolicyDecision:
    owner = resource.split(":")[4] or None if resource != "*" else None
    request = AuthorizationRequest(
        principal=caller,
        action=action,
        resource=resource,
        resource_account=owner,
        context=context or {},
    )
    return evaluate(request, identity_policies or [], resource_policies or [])


ALLOWED = PolicyDecision(allowed=True)


def denied(denial: Denial) -> PolicyDecision:
    return PolicyDecision(allowed=False, denial=denial)


# -- within one account --------------------------------------------------------------------------


def test_allowed_by_an_identity_policy() -> None:
    assert decide(ALICE, [identity(allow("ecr:PutImage", REPO))]) == ALLOWED


def test_implicitly_denied_without_any_allow() -> None:
    decision = decide(ALICE, [identity(allow("ecr:BatchGetImage", REPO))])
    assert decision == denied(Denial.NO_IDENTITY_ALLOW)
    assert not decision.explicit_deny
    assert decision.message(ALICE.arn, "ecr:PutImage", REPO) == (
        f"User: {ALICE.arn} is not authorized to perform: ecr:PutImage on resource: {REPO} "
        "because no identity-based policy allows the ecr:PutImage action"
    )


def test_explicitly_denied_despite_an_allow() -> None:
    policies = [identity(allow()), identity(deny("ecr:PutImage", REPO))]
    decision = decide(ALICE, policies, [repository(grant({"AWS": ALICE.arn}))])
    assert decision == denied(Denial.EXPLICIT_DENY_IDENTITY)
    assert decision.explicit_deny
    assert decision.message(ALICE.arn, "ecr:PutImage", REPO) == (
        f"User: {ALICE.arn} is not authorized to perform: ecr:PutImage on resource: {REPO} "
        "with an explicit deny in an identity-based policy"
    )


def test_a_deny_in_the_repository_policy_wins_over_an_identity_allow() -> None:
    decision = decide(ALICE, [identity(allow())], [repository(refuse("*", "ecr:PutImage"))])
    assert decision == denied(Denial.EXPLICIT_DENY_RESOURCE)
    assert decision.message(ALICE.arn, "ecr:PutImage", REPO).endswith(
        "with an explicit deny in a resource-based policy"
    )


@pytest.mark.parametrize(
    "principal",
    ["*", {"AWS": "*"}, {"AWS": ALICE.arn}, {"AWS": [CAROL.arn, ALICE.arn]}],
)
def test_allowed_only_by_the_repository_policy(principal: object) -> None:
    assert decide(ALICE, [], [repository(grant(principal, "ecr:PutImage"))]) == ALLOWED


@pytest.mark.parametrize("principal", [{"AWS": A}, {"AWS": f"arn:aws:iam::{A}:root"}])
def test_naming_the_account_delegates_and_allows_nothing_alone(principal: object) -> None:
    assert decide(ALICE, [], [repository(grant(principal))]) == denied(Denial.NO_IDENTITY_ALLOW)
    assert decide(ALICE, [identity(allow())], [repository(grant(principal))]) == ALLOWED
    # ... but the root user is the account.
    assert decide(ROOT_A, [], [repository(grant(principal))]) == ALLOWED


def test_a_repository_policy_naming_someone_else_does_not_allow() -> None:
    decision = decide(ALICE, [], [repository(grant({"AWS": CAROL.arn}))])
    assert decision == denied(Denial.NO_IDENTITY_ALLOW)


def test_a_deny_naming_the_account_binds_everyone_in_it() -> None:
    decision = decide(ALICE, [identity(allow())], [repository(refuse({"AWS": A}))])
    assert decision == denied(Denial.EXPLICIT_DENY_RESOURCE)


# -- across accounts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity_allows", "repository_names", "expected"),
    [
        (False, None, denied(Denial.NO_RESOURCE_ALLOW)),
        (True, None, denied(Denial.NO_RESOURCE_ALLOW)),
        (False, B, denied(Denial.NO_IDENTITY_ALLOW)),
        (True, B, ALLOWED),
        (True, f"arn:aws:iam::{B}:root", ALLOWED),
        (True, f"arn:aws:iam::{B}:user/bob", ALLOWED),
        (False, f"arn:aws:iam::{B}:user/bob", denied(Denial.NO_IDENTITY_ALLOW)),
        (True, "*", ALLOWED),
        (True, "333333333333", denied(Denial.NO_RESOURCE_ALLOW)),
        (True, f"arn:aws:iam::{B}:user/someone-else", denied(Denial.NO_RESOURCE_ALLOW)),
    ],
)
def test_cross_account_needs_both_sides(
    identity_allows: bool, repository_names: str | None, expected: PolicyDecision
) -> None:
    identities = [identity(allow("ecr:BatchGetImage", REPO))] if identity_allows else []
    resources = [repository(grant({"AWS": repository_names}))] if repository_names else []
    assert decide(BOB, identities, resources, action="ecr:BatchGetImage") == expected


def test_cross_account_message_names_the_resource_policy() -> None:
    decision = decide(BOB, [identity(allow())], action="ecr:BatchGetImage")
    assert decision.message(BOB.arn, "ecr:BatchGetImage", REPO) == (
        f"User: {BOB.arn} is not authorized to perform: ecr:BatchGetImage on resource: {REPO} "
        "because no resource-based policy allows the ecr:BatchGetImage action"
    )


def test_cross_account_identity_deny_wins() -> None:
    resources = [repository(grant({"AWS": B}))]
    policies = [identity(allow()), identity(deny("ecr:BatchGetImage"))]
    decision = decide(BOB, policies, resources, action="ecr:BatchGetImage")
    assert decision == denied(Denial.EXPLICIT_DENY_IDENTITY)


# -- the account root user -----------------------------------------------------------------------


def test_the_root_user_needs_no_identity_policy_in_its_account() -> None:
    assert decide(ROOT_A) == ALLOWED
    assert decide(ROOT_A, action="ecr:GetAuthorizationToken", resource="*") == ALLOWED


def test_the_root_user_is_bound_by_a_resource_deny() -> None:
    decision = decide(
        ROOT_A, [], [repository(refuse("*", "ecr:DeleteRepository"))], action="ecr:DeleteRepository"
    )
    assert decision == denied(Denial.EXPLICIT_DENY_RESOURCE)


def test_another_accounts_root_needs_the_resource_side() -> None:
    assert decide(ROOT_B) == denied(Denial.NO_RESOURCE_ALLOW)
    assert decide(ROOT_B, [], [repository(grant({"AWS": B}))]) == ALLOWED


# -- assumed-role sessions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ({"AWS": ROLE}, ALLOWED),
        ({"AWS": SESSION.arn}, ALLOWED),
        ({"AWS": f"arn:aws:iam::{A}:role/other"}, denied(Denial.NO_IDENTITY_ALLOW)),
        ({"AWS": f"arn:aws:sts::{A}:assumed-role/deploy/other"}, denied(Denial.NO_IDENTITY_ALLOW)),
        ({"AWS": A}, denied(Denial.NO_IDENTITY_ALLOW)),
    ],
)
def test_a_role_arn_names_its_sessions(principal: object, expected: PolicyDecision) -> None:
    assert decide(SESSION, [], [repository(grant(principal))]) == expected


def test_a_session_without_its_role_arn_matches_the_role_by_name() -> None:
    session = Caller.from_arn(f"arn:aws:sts::{A}:assumed-role/deploy/build-42")
    assert decide(session, [], [repository(grant({"AWS": ROLE}))]) == ALLOWED
    other = {"AWS": f"arn:aws:iam::{A}:role/ci/deployer"}
    assert not decide(session, [], [repository(grant(other))]).allowed


# -- the registry policy, layered with the repository policy -------------------------------------


def registry(*statements: Mapping[str, object]) -> Policy:
    return policy(PolicyKind.REGISTRY, *statements)


def test_registry_policy_is_one_more_resource_based_policy() -> None:
    registry_grant = registry(grant({"AWS": B}, "ecr:ReplicateImage", Resource=REPO))
    assert (
        decide(BOB, [identity(allow())], [registry_grant], action="ecr:ReplicateImage") == ALLOWED
    )
    registry_other_repo = registry(grant({"AWS": B}, "ecr:*", Resource=OTHER_REPO))
    decision = decide(BOB, [identity(allow())], [registry_other_repo], action="ecr:ReplicateImage")
    assert decision == denied(Denial.NO_RESOURCE_ALLOW)
    registry_deny = registry(refuse("*", "ecr:*", Resource="arn:aws:ecr:*:*:repository/*"))
    decision = decide(BOB, [identity(allow())], [repository(grant({"AWS": B})), registry_deny])
    assert decision == denied(Denial.EXPLICIT_DENY_RESOURCE)


# -- conditions that flip the decision -----------------------------------------------------------


@pytest.mark.parametrize(
    ("source_ip", "allowed"),
    [("203.0.113.9", True), ("198.51.100.9", False), (None, False)],
)
def test_source_ip_flips_an_identity_allow(source_ip: str | None, allowed: bool) -> None:
    policies = [identity(allow(Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))]
    context = {"aws:SourceIp": source_ip} if source_ip else {}
    assert decide(ALICE, policies, context=context).allowed is allowed


@pytest.mark.parametrize(("source_ip", "allowed"), [("203.0.113.9", True), ("10.0.0.1", False)])
def test_source_ip_flips_a_deny(source_ip: str, allowed: bool) -> None:
    fence = deny(Condition={"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}})
    policies = [identity(allow()), identity(fence)]
    decision = decide(ALICE, policies, context={"aws:SourceIp": source_ip})
    assert decision.allowed is allowed
    assert decision.explicit_deny is not allowed


@pytest.mark.parametrize(
    ("tags", "allowed"),
    [({"env": "dev"}, True), ({"env": "prod"}, False), ({}, True), ({"Env": "prod"}, False)],
)
def test_resource_tag_flips_the_decision(tags: dict[str, str], allowed: bool) -> None:
    no_prod = deny("ecr:PutImage", Condition={"StringEquals": {"ecr:ResourceTag/env": "prod"}})
    policies = [identity(allow()), identity(no_prod)]
    assert decide(ALICE, policies, context=resource_tag_context(tags)).allowed is allowed


@pytest.mark.parametrize(("caller", "allowed"), [(ALICE, True), (CAROL, False), (SESSION, False)])
def test_principal_arn_flips_a_repository_grant(caller: Caller, allowed: bool) -> None:
    only_alice = grant(
        "*", Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{A}:user/al*"}}
    )
    context = global_context(caller, now=1_700_000_000)
    assert decide(caller, [], [repository(only_alice)], context=context).allowed is allowed


def test_principal_account_and_time_conditions() -> None:
    org_only = grant("*", Condition={"StringEquals": {"aws:PrincipalAccount": [A, B]}})
    context = global_context(BOB, now=1_700_000_000)
    assert decide(BOB, [identity(allow())], [repository(org_only)], context=context) == ALLOWED
    window = allow(Condition={"DateLessThan": {"aws:CurrentTime": "2023-11-14T22:13:21Z"}})
    assert decide(
        ALICE, [identity(window)], context=global_context(ALICE, now=1_700_000_000)
    ).allowed
    assert not decide(
        ALICE, [identity(window)], context=global_context(ALICE, now=1_700_000_001)
    ).allowed


def test_request_tags_and_tag_keys() -> None:
    tagging = allow(
        "ecr:TagResource",
        Condition={
            "StringEquals": {"aws:RequestTag/team": "${aws:username}"},
            "ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]},
        },
    )
    context = {
        **global_context(ALICE, now=0, username="alice"),
        **request_tag_context({"team": "alice"}),
    }
    assert decide(ALICE, [identity(tagging)], action="ecr:TagResource", context=context).allowed
    context.update(request_tag_context({"team": "alice", "cost": "1"}))
    assert not decide(ALICE, [identity(tagging)], action="ecr:TagResource", context=context).allowed


def test_secure_transport() -> None:
    tls_only = deny(Condition={"Bool": {"aws:SecureTransport": "false"}})
    policies = [identity(allow()), identity(tls_only)]
    plain = global_context(ALICE, now=0, secure_transport=False)
    assert decide(ALICE, policies, context=plain) == denied(Denial.EXPLICIT_DENY_IDENTITY)
    assert decide(
        ALICE, policies, context=global_context(ALICE, now=0, secure_transport=True)
    ).allowed


# -- NotAction, NotResource, NotPrincipal ---------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "allowed"),
    [("ecr:PutImage", True), ("ecr:BatchDeleteImage", False), ("ecr:DeleteRepository", False)],
)
def test_not_action_in_an_allow(action: str, allowed: bool) -> None:
    everything_but_deletes = {"Effect": "Allow", "NotAction": "ecr:*Delete*", "Resource": "*"}
    assert decide(ALICE, [identity(everything_but_deletes)], action=action).allowed is allowed


@pytest.mark.parametrize(
    ("action", "allowed"), [("ecr:BatchGetImage", True), ("ecr:PutImage", False)]
)
def test_not_action_in_a_deny(action: str, allowed: bool) -> None:
    read_only = {"Effect": "Deny", "NotAction": ["ecr:BatchGetImage", "ecr:Get*"], "Resource": "*"}
    decision = decide(ALICE, [identity(allow()), identity(read_only)], action=action)
    assert decision.allowed is allowed


@pytest.mark.parametrize(("resource", "allowed"), [(REPO, True), (OTHER_REPO, False)])
def test_not_resource_in_a_deny(resource: str, allowed: bool) -> None:
    only_app = {"Effect": "Deny", "Action": "ecr:*", "NotResource": REPO}
    decision = decide(ALICE, [identity(allow()), identity(only_app)], resource=resource)
    assert decision.allowed is allowed


def test_not_resource_in_an_allow() -> None:
    all_but_app = {"Effect": "Allow", "Action": "ecr:*", "NotResource": [REPO]}
    assert not decide(ALICE, [identity(all_but_app)]).allowed
    assert decide(ALICE, [identity(all_but_app)], resource=OTHER_REPO).allowed


@pytest.mark.parametrize(
    ("spared", "caller", "allowed"),
    [
        ([ALICE.arn, f"arn:aws:iam::{A}:root"], ALICE, True),
        ([ALICE.arn, f"arn:aws:iam::{A}:root"], CAROL, False),
        # Without its account listed, the user is not spared: AWS evaluates the account too.
        ([ALICE.arn], ALICE, False),
        ([SESSION.arn, ROLE, A], SESSION, True),
        ([ROLE, A], SESSION, False),
        ([SESSION.arn, A], SESSION, False),
    ],
)
def test_not_principal_in_a_deny(spared: list[str], caller: Caller, allowed: bool) -> None:
    guard = {"Effect": "Deny", "NotPrincipal": {"AWS": spared}, "Action": "ecr:*"}
    decision = decide(caller, [identity(allow())], [repository(guard)])
    assert decision.allowed is allowed
    assert decision.explicit_deny is not allowed


# -- policy variables ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "allowed"),
    [
        (f"arn:aws:ecr:us-east-1:{A}:repository/alice/app", True),
        (f"arn:aws:ecr:us-east-1:{A}:repository/bob/app", False),
        (f"arn:aws:ecr:us-east-1:{A}:repository/${{aws:username}}/app", False),
    ],
)
def test_variables_in_resources(resource: str, allowed: bool) -> None:
    own = allow(resource="arn:aws:ecr:*:${aws:PrincipalAccount}:repository/${aws:username}/*")
    context = global_context(ALICE, now=0, username="alice")
    assert decide(ALICE, [identity(own)], resource=resource, context=context).allowed is allowed


def test_a_variable_missing_from_the_context_matches_nothing() -> None:
    own = allow(resource="arn:aws:ecr:*:*:repository/${aws:username}/*")
    resource = f"arn:aws:ecr:us-east-1:{A}:repository/deploy/app"
    context = global_context(SESSION, now=0)
    assert not decide(SESSION, [identity(own)], resource=resource, context=context).allowed


def test_variables_are_text_in_version_2008() -> None:
    own = grant("*", Condition={"StringEquals": {"aws:username": "${aws:username}"}})
    context = global_context(ALICE, now=0, username="alice")
    assert decide(ALICE, [], [repository(own)], context=context).allowed
    assert not decide(ALICE, [], [repository(own, version="2008-10-17")], context=context).allowed


# -- actions and resources -----------------------------------------------------------------------


def test_actions_match_regardless_of_case() -> None:
    assert decide(ALICE, [identity(allow("ECR:putimage", REPO))]).allowed
    assert decide(ALICE, [identity(allow("ecr:put*", REPO))]).allowed
    assert not decide(ALICE, [identity(allow("ecr-public:*"))]).allowed


def test_actions_on_no_resource_need_resource_star() -> None:
    def token(policy: Policy) -> bool:
        return decide(ALICE, [policy], action="ecr:GetAuthorizationToken", resource="*").allowed

    assert token(identity(allow("ecr:GetAuthorizationToken", "*")))
    assert not token(identity(allow("ecr:*", "arn:aws:ecr:*:*:repository/*")))


def test_statements_in_other_policies_do_not_interfere() -> None:
    policies = [identity(allow("ecr:BatchGetImage", REPO)), identity(deny("ecr:*", OTHER_REPO))]
    assert decide(ALICE, policies, action="ecr:BatchGetImage").allowed


# -- trust policies and service principals --------------------------------------------------------


def trust(*statements: Mapping[str, object]) -> Policy:
    return policy(PolicyKind.TRUST, *statements)


def assume(caller: Caller, identities: list[Policy], role_trust: Policy) -> PolicyDecision:
    return decide(caller, identities, [role_trust], action="sts:AssumeRole", resource=ROLE)


def test_a_service_principal_is_allowed_by_the_trust_policy_alone() -> None:
    ecs_trust = trust(grant({"Service": "ecs-tasks.amazonaws.com"}, "sts:AssumeRole"))
    assert assume(ECS, [], ecs_trust) == ALLOWED
    assert assume(Caller.service("lambda.amazonaws.com"), [], ecs_trust) == denied(
        Denial.NO_RESOURCE_ALLOW
    )
    # Within the account too, an identity-based allow cannot stand in for the trust policy.
    assert assume(ALICE, [identity(allow("sts:AssumeRole"))], ecs_trust) == denied(
        Denial.NO_RESOURCE_ALLOW
    )
    assert assume(ROOT_A, [], ecs_trust) == denied(Denial.NO_RESOURCE_ALLOW)


def test_trust_policy_within_and_across_accounts() -> None:
    names_alice = trust(grant({"AWS": ALICE.arn}, "sts:AssumeRole"))
    names_account = trust(grant({"AWS": A}, "sts:AssumeRole"))
    names_b = trust(grant({"AWS": B}, "sts:AssumeRole"))
    may_assume = identity(allow("sts:AssumeRole", ROLE))
    assert assume(ALICE, [], names_alice) == ALLOWED
    assert assume(ALICE, [], names_account) == denied(Denial.NO_IDENTITY_ALLOW)
    assert assume(ALICE, [may_assume], names_account) == ALLOWED
    assert assume(BOB, [], names_b) == denied(Denial.NO_IDENTITY_ALLOW)
    assert assume(BOB, [may_assume], names_b) == ALLOWED
    assert assume(BOB, [may_assume], names_account) == denied(Denial.NO_RESOURCE_ALLOW)


# -- callers and their context --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        (f"arn:aws:iam::{A}:root", "root"),
        (f"arn:aws:iam::{A}:user/alice", "user"),
        (f"arn:aws:iam::{A}:user/path/alice", "user"),
        (f"arn:aws:iam::{A}:role/deploy", "role"),
        (f"arn:aws:sts::{A}:assumed-role/deploy/s", "assumed-role"),
        (f"arn:aws:sts::{A}:federated-user/f", "federated-user"),
    ],
)
def test_callers_from_arns(arn: str, kind: str) -> None:
    caller = Caller.from_arn(arn)
    assert (caller.kind, caller.account_id) == (kind, A)


@pytest.mark.parametrize("arn", ["alice", f"arn:aws:iam::{A}:group/g", "arn:aws:iam::1:user/a"])
def test_callers_from_bad_arns(arn: str) -> None:
    with pytest.raises(ValueError, match="not a principal ARN"):
        Caller.from_arn(arn)


def test_global_context() -> None:
    session = global_context(
        SESSION, now=1_700_000_000, userid="AROAEXAMPLE:build-42", source_ip="203.0.113.9"
    )
    assert session == {
        "aws:CurrentTime": "2023-11-14T22:13:20Z",
        "aws:EpochTime": "1700000000",
        "aws:PrincipalArn": ROLE,
        "aws:PrincipalAccount": A,
        "aws:PrincipalType": "AssumedRole",
        "aws:userid": "AROAEXAMPLE:build-42",
        "aws:SourceIp": "203.0.113.9",
    }
    user = global_context(
        ALICE, now=0, userid="AIDAEXAMPLE", username="alice", secure_transport=True
    )
    assert (user["aws:username"], user["aws:userid"], user["aws:SecureTransport"]) == (
        "alice",
        "AIDAEXAMPLE",
        "true",
    )
    assert global_context(ROOT_A, now=0, username="ignored")["aws:userid"] == A
    assert "aws:username" not in global_context(ROOT_A, now=0, username="ignored")
    assert "aws:PrincipalArn" not in global_context(ECS, now=0)


def test_tag_contexts() -> None:
    assert resource_tag_context({"env": "prod"}) == {
        "aws:ResourceTag/env": "prod",
        "ecr:ResourceTag/env": "prod",
    }
    assert request_tag_context({"a": "1", "b": "2"}) == {
        "aws:RequestTag/a": "1",
        "aws:RequestTag/b": "2",
        "aws:TagKeys": ("a", "b"),
    }
