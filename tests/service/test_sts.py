"""STS sessions through the services on SQLite and PostgreSQL: GetSessionToken, AssumeRole and
its trust policy, temporary credentials as SigV4 resolves them (token, expiry), and the `/v2/`
tokens of role sessions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cargohold.auth.errors import ExpiredToken, TokenExpired, TokenInvalid
from cargohold.auth.secretbox import SecretBox
from cargohold.domain.errors import AccessDenied
from cargohold.domain.identity import InvalidInput, is_session_key_id
from cargohold.domain.policy import PolicyError
from cargohold.domain.principal import Principal
from cargohold.metadata.schema import sessions
from cargohold.metadata.store import MetadataStore
from cargohold.service.audit import AuditLog
from cargohold.service.authentication import Authentication
from cargohold.service.authz import Authorizer, RequestRecord
from cargohold.service.credentials import MASTER_KEY_FILE
from cargohold.service.iam import IamService
from cargohold.service.identity import Identities
from cargohold.service.identity_admin import IdentityAdmin
from cargohold.service.identity_policies import IdentityPolicies
from cargohold.service.managed_policies import ManagedPolicyService
from cargohold.service.policies import ResourcePolicies
from cargohold.service.sts import StsService

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
EXECUTION = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def trust(principal: Any, condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "sts:AssumeRole",
    }
    if condition is not None:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def allow(action: str, resource: str = "*", effect: str = "Allow") -> str:
    statement = {"Effect": effect, "Action": action, "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def identities(store: MetadataStore, tmp_path: Path, now: list[float]) -> Identities:
    return Identities.from_data_dir(
        store, tmp_path, lambda: now[0], account_id=ACCOUNT, region="us-east-1"
    )


@pytest.fixture
def identity_admin(identities: Identities) -> IdentityAdmin:
    return identities.admin


@pytest.fixture
def authentication(identities: Identities) -> Authentication:
    return identities.authentication


@pytest.fixture
def iam(store: MetadataStore, now: list[float]) -> IamService:
    return IamService(store, lambda: now[0], account_id=ACCOUNT)


@pytest.fixture
def authorizer(store: MetadataStore, iam: IamService, now: list[float]) -> Authorizer:
    return Authorizer(
        lambda: now[0], identities=IdentityPolicies(store, iam), resources=ResourcePolicies(store)
    )


@pytest.fixture
def sts(
    store: MetadataStore,
    iam: IamService,
    authorizer: Authorizer,
    tmp_path: Path,
    now: list[float],
) -> StsService:
    box = SecretBox.from_key_file(tmp_path / MASTER_KEY_FILE)
    return StsService(store, box, iam, lambda: now[0], authorizer=authorizer)


async def user(identities: Identities, name: str) -> Principal:
    """A user with a key, as SigV4 resolves it."""
    await identities.admin.create_user(name)
    created = await identities.admin.create_access_key(name)
    principal = await identities.authentication.principal_for_key(created.key.id)
    assert principal is not None
    return principal


# -- GetCallerIdentity, GetSessionToken --------------------------------------------------------


async def test_caller_identity(identities: Identities, sts: StsService) -> None:
    alice = await user(identities, "alice")
    who = sts.caller_identity(alice)
    assert (who.user_id, who.account, who.arn) == (alice.principal_id, ACCOUNT, alice.arn)


async def test_session_token(
    identities: Identities, authentication: Authentication, sts: StsService, now: list[float]
) -> None:
    alice = await user(identities, "alice")
    credentials = await sts.get_session_token(alice, 900)
    assert is_session_key_id(credentials.access_key_id)
    assert credentials.access_key_id.startswith("ASIA") and len(credentials.access_key_id) == 20
    assert len(credentials.secret_access_key) == 40
    assert credentials.expiration == now[0] + 900
    assert "secret" not in repr(credentials).lower().replace("<secrets hidden>", "")

    resolved = await authentication.resolve_credential(
        credentials.access_key_id, credentials.session_token
    )
    assert resolved is not None and resolved.secret == credentials.secret_access_key
    principal = resolved.principal
    assert principal.arn == alice.arn and principal.principal_id == alice.principal_id
    assert principal.username == "alice" and principal.kind == "user"
    assert principal.session_token_id == credentials.access_key_id
    assert principal.expires_at == credentials.expiration and principal.temporary

    # A session token cannot make another session.
    with pytest.raises(AccessDenied, match="Cannot call GetSessionToken with session"):
        await sts.get_session_token(principal)


async def test_session_tokens_last_twelve_hours_by_default(
    identities: Identities, sts: StsService, now: list[float]
) -> None:
    credentials = await sts.get_session_token(await user(identities, "alice"))
    assert credentials.expiration == now[0] + 43200


async def test_temporary_credentials_need_their_token(
    identities: Identities, authentication: Authentication, sts: StsService
) -> None:
    alice = await user(identities, "alice")
    credentials = await sts.get_session_token(alice)
    key = credentials.access_key_id
    assert await authentication.resolve_credential(key, None) is None
    assert await authentication.resolve_credential(key, "wrong") is None
    assert await authentication.resolve_credential(key, credentials.session_token + "x") is None
    other = await sts.get_session_token(alice)
    assert await authentication.resolve_credential(key, other.session_token) is None
    # A long-term key with a session token is no credential either.
    assert alice.access_key_id is not None
    assert await authentication.resolve_credential(alice.access_key_id, "token") is None
    assert await authentication.resolve_credential(alice.access_key_id, None) is not None
    # Neither is a session key that never existed.
    assert await authentication.resolve_credential("ASIAAAAAAAAAAAAAAAAA", "token") is None


async def test_temporary_credentials_expire(
    identities: Identities, authentication: Authentication, sts: StsService, now: list[float]
) -> None:
    credentials = await sts.get_session_token(await user(identities, "alice"), 900)
    now[0] += 899
    assert await authentication.resolve_credential(
        credentials.access_key_id, credentials.session_token
    )
    now[0] += 1
    with pytest.raises(ExpiredToken, match="The security token included in the request is expired"):
        await authentication.resolve_credential(
            credentials.access_key_id, credentials.session_token
        )
    # A wrong token is unrecognized rather than expired: it says nothing about the session.
    assert await authentication.resolve_credential(credentials.access_key_id, "wrong") is None


async def test_secrets_are_sealed_at_rest(
    identities: Identities, sts: StsService, store: MetadataStore
) -> None:
    credentials = await sts.get_session_token(await user(identities, "alice"))
    async with store.read() as tx:
        row = (await tx.conn.execute(sa.select(sessions))).one()
    assert credentials.secret_access_key.encode() not in bytes(row.secret)
    assert credentials.session_token.encode() not in bytes(row.token)
    assert credentials.session_token.encode() not in bytes(row.secret)


async def test_deleting_the_user_ends_its_sessions(
    identities: Identities,
    identity_admin: IdentityAdmin,
    authentication: Authentication,
    sts: StsService,
) -> None:
    credentials = await sts.get_session_token(await user(identities, "alice"))
    await identity_admin.delete_user("alice", force=True)
    assert (
        await authentication.resolve_credential(
            credentials.access_key_id, credentials.session_token
        )
        is None
    )


# -- AssumeRole --------------------------------------------------------------------------------


async def test_assume_a_role_the_trust_policy_names_the_caller_for(
    identities: Identities,
    authentication: Authentication,
    iam: IamService,
    sts: StsService,
    now: list[float],
) -> None:
    alice = await user(identities, "alice")
    role = await iam.create_role("deployer", trust({"AWS": alice.arn}), path="/ci/")
    assumed = await sts.assume_role(alice, role.arn, "build-42")
    assert assumed.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/build-42"
    assert assumed.assumed_role_id == f"{role.id}:build-42"
    assert assumed.credentials.expiration == now[0] + 3600
    assert assumed.packed_policy_size is None

    resolved = await authentication.resolve_credential(
        assumed.credentials.access_key_id, assumed.credentials.session_token
    )
    assert resolved is not None
    session = resolved.principal
    assert session.kind == "assumed-role"
    assert session.arn == assumed.arn and session.principal_id == assumed.assumed_role_id
    assert session.role_arn == role.arn and session.session_name == "build-42"
    assert session.identity_id == role.id and session.holder_id == role.id
    assert session.username is None and session.account_id == ACCOUNT
    assert sts.caller_identity(session).user_id == f"{role.id}:build-42"


async def test_a_trust_policy_naming_the_account_needs_an_identity_allow(
    identities: Identities, iam: IamService, sts: StsService
) -> None:
    alice = await user(identities, "alice")
    role = await iam.create_role("r", trust({"AWS": ROOT}))
    denial = (
        f"User: {alice.arn} is not authorized to perform: sts:AssumeRole on resource: {role.arn}"
    )
    with pytest.raises(AccessDenied) as raised:
        await sts.assume_role(alice, role.arn, "s")
    assert raised.value.message == denial
    await iam.put_inline_policy("user", "alice", "assume", allow("sts:AssumeRole", role.arn))
    await sts.assume_role(alice, role.arn, "s")


async def test_a_trust_policy_that_names_someone_else_denies(
    identities: Identities, iam: IamService, sts: StsService
) -> None:
    alice = await user(identities, "alice")
    bob = await user(identities, "bob")
    role = await iam.create_role("r", trust({"AWS": bob.arn}))
    # Not even an identities-based allow of everything lets alice in.
    await iam.put_inline_policy("user", "alice", "all", allow("*"))
    with pytest.raises(AccessDenied):
        await sts.assume_role(alice, role.arn, "s")
    await sts.assume_role(bob, role.arn, "s")
    service_role = await iam.create_role("svc", trust({"Service": "ecs-tasks.amazonaws.com"}))
    with pytest.raises(AccessDenied):
        await sts.assume_role(alice, service_role.arn, "s")


async def test_an_explicit_deny_wins(
    identities: Identities, iam: IamService, sts: StsService
) -> None:
    alice = await user(identities, "alice")
    role = await iam.create_role("r", trust({"AWS": alice.arn}))
    await iam.put_inline_policy("user", "alice", "no", allow("sts:AssumeRole", effect="Deny"))
    with pytest.raises(AccessDenied):
        await sts.assume_role(alice, role.arn, "s")


async def test_trust_policy_conditions(
    identities: Identities, iam: IamService, sts: StsService
) -> None:
    alice = await user(identities, "alice")
    condition = {"StringEquals": {"sts:ExternalId": "s3cret"}}
    role = await iam.create_role("r", trust({"AWS": alice.arn}, condition))
    with pytest.raises(AccessDenied):
        await sts.assume_role(alice, role.arn, "s")
    with pytest.raises(AccessDenied):
        await sts.assume_role(alice, role.arn, "s", external_id="guess")
    await sts.assume_role(alice, role.arn, "s", external_id="s3cret")

    by_ip = await iam.create_role(
        "by-ip", trust({"AWS": alice.arn}, {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    )
    with pytest.raises(AccessDenied):
        await sts.assume_role(alice, by_ip.arn, "s", context={"aws:SourceIp": "192.0.2.1"})
    await sts.assume_role(alice, by_ip.arn, "s", context={"aws:SourceIp": "10.1.2.3"})


async def test_the_trust_policy_decision_is_audited(
    identities: Identities,
    iam: IamService,
    store: MetadataStore,
    tmp_path: Path,
    now: list[float],
) -> None:
    """AssumeRole is decided by the one authorizer, so its decisions reach the audit log like
    every other, with the request the front records."""
    audit = AuditLog(store, flush_interval=3600)
    authorizer = Authorizer(
        lambda: now[0],
        identities=IdentityPolicies(store, iam),
        resources=ResourcePolicies(store),
        audit=audit,
    )
    box = SecretBox.from_key_file(tmp_path / MASTER_KEY_FILE)
    sts = StsService(store, box, iam, lambda: now[0], authorizer=authorizer)
    alice = await user(identities, "alice")
    condition = {"StringEquals": {"sts:ExternalId": "s3cret"}}
    role = await iam.create_role("partner", trust({"AWS": alice.arn}, condition))
    record = RequestRecord(
        event_source="sts.amazonaws.com",
        parameters={"RoleArn": role.arn, "RoleSessionName": "ci"},
        request_id="req-1",
        region="eu-west-1",
        source_ip="192.0.2.7",
    )
    with pytest.raises(AccessDenied):
        await sts.assume_role(alice, role.arn, "ci", external_id="guess", record=record)
    await sts.assume_role(alice, role.arn, "ci", external_id="s3cret")
    await audit.close()

    denied, allowed = [event.document for event in await AuditLog(store).events()]
    assert (denied["eventSource"], denied["eventName"]) == ("sts.amazonaws.com", "AssumeRole")
    assert denied["errorCode"] == "AccessDenied"
    assert denied["errorMessage"] == (
        f"User: {alice.arn} is not authorized to perform: sts:AssumeRole on resource: {role.arn}"
    )
    assert denied["userIdentity"]["arn"] == alice.arn
    assert denied["resources"] == [{"ARN": role.arn, "accountId": ACCOUNT}]
    assert (denied["requestID"], denied["awsRegion"]) == ("req-1", "eu-west-1")
    assert denied["sourceIPAddress"] == "192.0.2.7"
    assert denied["requestParameters"] == {"RoleArn": role.arn, "RoleSessionName": "ci"}
    assert allowed["eventName"] == "AssumeRole" and "errorCode" not in allowed


async def test_a_role_that_does_not_exist_is_denied_not_missing(
    identities: Identities, sts: StsService
) -> None:
    alice = await user(identities, "alice")
    ghost = f"arn:aws:iam::{ACCOUNT}:role/ghost"
    with pytest.raises(AccessDenied, match=f"on resource: {ghost}"):
        await sts.assume_role(alice, ghost, "s")


async def test_session_durations(
    identities: Identities, iam: IamService, sts: StsService, now: list[float]
) -> None:
    alice = await user(identities, "alice")
    role = await iam.create_role("r", trust({"AWS": alice.arn}), max_session_duration=7200)
    assert (
        await sts.assume_role(alice, role.arn, "s", duration_seconds=7200)
    ).credentials.expiration == (now[0] + 7200)
    with pytest.raises(InvalidInput, match="exceeds the MaxSessionDuration set for this role"):
        await sts.assume_role(alice, role.arn, "s", duration_seconds=7201)


async def test_role_chaining_lasts_an_hour_at_most(
    identities: Identities,
    authentication: Authentication,
    iam: IamService,
    sts: StsService,
    now: list[float],
) -> None:
    alice = await user(identities, "alice")
    first = await iam.create_role("first", trust({"AWS": alice.arn}), max_session_duration=43200)
    assumed = await sts.assume_role(alice, first.arn, "one", duration_seconds=43200)
    resolved = await authentication.resolve_credential(
        assumed.credentials.access_key_id, assumed.credentials.session_token
    )
    assert resolved is not None
    session = resolved.principal
    second = await iam.create_role("second", trust({"AWS": first.arn}), max_session_duration=43200)
    chained = await sts.assume_role(session, second.arn, "two")
    assert chained.credentials.expiration == now[0] + 3600
    with pytest.raises(
        InvalidInput, match="1 hour session limit for roles assumed by role chaining"
    ):
        await sts.assume_role(session, second.arn, "two", duration_seconds=3601)
    # The trust policy named the role: its sessions are let in, whatever their name.
    assert chained.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/second/two"


async def test_session_policies_are_validated(
    identities: Identities, iam: IamService, sts: StsService
) -> None:
    alice = await user(identities, "alice")
    role = await iam.create_role("r", trust({"AWS": alice.arn}))
    with pytest.raises(PolicyError) as raised:
        await sts.assume_role(alice, role.arn, "s", policy="{nope")
    assert raised.value.code == "MalformedPolicyDocument"
    narrowed = await sts.assume_role(alice, role.arn, "s", policy=allow("ecr:BatchGetImage"))
    assert narrowed.packed_policy_size is not None and 0 < narrowed.packed_policy_size < 100


async def test_managed_session_policies_must_exist(
    identities: Identities, iam: IamService, sts: StsService, store: MetadataStore
) -> None:
    await ManagedPolicyService(
        store, iam, lambda: 0.0, account_id=ACCOUNT
    ).ensure_aws_managed_policies()
    alice = await user(identities, "alice")
    role = await iam.create_role("r", trust({"AWS": alice.arn}))
    await sts.assume_role(alice, role.arn, "s", policy_arns=(EXECUTION,))
    with pytest.raises(InvalidInput, match="does not exist"):
        await sts.assume_role(alice, role.arn, "s", policy_arns=(f"{EXECUTION}x",))


async def test_deleting_the_role_ends_its_sessions(
    identities: Identities, authentication: Authentication, iam: IamService, sts: StsService
) -> None:
    alice = await user(identities, "alice")
    role = await iam.create_role("r", trust({"AWS": alice.arn}))
    assumed = await sts.assume_role(alice, role.arn, "s")
    await iam.delete_role("r")
    credentials = assumed.credentials
    assert (
        await authentication.resolve_credential(
            credentials.access_key_id, credentials.session_token
        )
        is None
    )


# -- /v2/ tokens of sessions -------------------------------------------------------------------


async def test_a_role_sessions_registry_token_lives_as_long_as_the_session(
    identities: Identities,
    authentication: Authentication,
    iam: IamService,
    sts: StsService,
    now: list[float],
) -> None:
    alice = await user(identities, "alice")
    role = await iam.create_role("puller", trust({"AWS": alice.arn}))
    assumed = await sts.assume_role(alice, role.arn, "s", duration_seconds=1800)
    resolved = await authentication.resolve_credential(
        assumed.credentials.access_key_id, assumed.credentials.session_token
    )
    assert resolved is not None
    password, expires_at = authentication.issue_password(resolved.principal)
    # A role session's token ends with the session, not twelve hours later.
    assert expires_at == now[0] + 1800
    assert await authentication.authenticate_password(password) == resolved.principal
    now[0] += 1799
    assert (await authentication.authenticate_password(password)).arn == assumed.arn
    now[0] += 1
    with pytest.raises((TokenExpired, TokenInvalid)):
        await authentication.authenticate_password(password)


async def test_a_registry_token_of_a_deleted_role_session_is_refused(
    identities: Identities, authentication: Authentication, iam: IamService, sts: StsService
) -> None:
    alice = await user(identities, "alice")
    role = await iam.create_role("puller", trust({"AWS": alice.arn}))
    assumed = await sts.assume_role(alice, role.arn, "s")
    resolved = await authentication.resolve_credential(
        assumed.credentials.access_key_id, assumed.credentials.session_token
    )
    assert resolved is not None
    password, _ = authentication.issue_password(resolved.principal)
    await iam.delete_role("puller")
    with pytest.raises(TokenInvalid):
        await authentication.authenticate_password(password)


async def test_a_session_token_users_registry_token(
    identities: Identities, authentication: Authentication, sts: StsService
) -> None:
    credentials = await sts.get_session_token(await user(identities, "alice"), 3600)
    resolved = await authentication.resolve_credential(
        credentials.access_key_id, credentials.session_token
    )
    assert resolved is not None
    password, expires_at = authentication.issue_password(resolved.principal)
    assert expires_at == credentials.expiration
    principal = await authentication.authenticate_password(password)
    assert principal.username == "alice" and principal.session_token_id == credentials.access_key_id
