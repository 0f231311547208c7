"""`/v2/` authentication and authorization: the token gatekeeper in front of the OCI front."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from cargohold.app import Node
from cargohold.config import Config
from cargohold.domain.identity import USER
from cargohold.domain.principal import Principal
from cargohold.http.gatekeeper import TokenGatekeeper, realm_for
from cargohold.service.authentication import Authentication
from cargohold.service.authz import Authorizer
from cargohold.service.iam import IamService
from cargohold.service.identity import Identities
from cargohold.service.identity_admin import IdentityAdmin
from cargohold.service.identity_policies import IdentityPolicies
from cargohold.service.policies import ResourcePolicies
from oci_harness import FrontApp, expect_error, push_blob

pytestmark = pytest.mark.anyio

ACCOUNT = "123456789012"
CHALLENGE = 'Basic realm="http://127.0.0.1:5000/",service="ecr.amazonaws.com"'


@pytest.fixture
def now() -> list[float]:
    return [1_800_000_000.0]


@pytest.fixture
def identities(node: Node, config: Config, now: list[float]) -> Identities:
    return Identities.from_data_dir(
        node.store,
        config.data_path,
        lambda: now[0],
        account_id=config.account_id,
        region=config.region,
    )


@pytest.fixture
def identity_admin(identities: Identities) -> IdentityAdmin:
    return identities.admin


@pytest.fixture
def authentication(identities: Identities) -> Authentication:
    return identities.authentication


@pytest.fixture
def iam(node: Node, config: Config, now: list[float]) -> IamService:
    return IamService(node.store, lambda: now[0], account_id=config.account_id)


@pytest.fixture
def gatekeeper(
    node: Node, config: Config, authentication: Authentication, iam: IamService, now: list[float]
) -> TokenGatekeeper:
    """The real gatekeeper, on a clock the test moves, in place of the harness's allow-all."""
    keeper = TokenGatekeeper(
        authentication,
        Authorizer(
            lambda: now[0],
            identities=IdentityPolicies(node.store, iam),
            resources=ResourcePolicies(node.store),
        ),
        account_id=config.account_id,
        region=config.region,
        public_url=config.resolved_public_url,
    )
    node.oci.gatekeeper = keeper
    return keeper


@pytest.fixture
async def http(gatekeeper: TokenGatekeeper, app: FrontApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as client:
        yield client


ECR_ALL = (
    '{"Version": "2012-10-17", '
    '"Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}'
)


async def _user(
    identities: Identities, name: str = "bob", *, iam: IamService | None = None
) -> Principal:
    """A user with a key; given `iam`, allowed every ECR action by an inline policy."""
    await identities.admin.create_user(name)
    if iam is not None:
        await iam.for_account(identities.admin.account_id).put_inline_policy(
            USER, name, "ecr", ECR_ALL
        )
    key_id = (await identities.admin.create_access_key(name)).key.id
    principal = await identities.authentication.principal_for_key(key_id)
    assert principal is not None
    return principal


def _basic(password: str, user: str = "AWS") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _expect_401(response: httpx.Response) -> None:
    expect_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


async def test_no_credentials_get_the_ecr_challenge(http: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/v2/"),
        ("GET", "/v2/_catalog"),
        ("GET", "/v2/app/tags/list"),
        ("HEAD", "/v2/app/manifests/latest"),
        ("POST", "/v2/app/blobs/uploads/"),
    ]:
        response = await http.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == CHALLENGE
    _expect_401(await http.get("/v2/"))


async def test_a_valid_token_opens_v2(
    http: httpx.AsyncClient,
    app: FrontApp,
    identities: Identities,
    authentication: Authentication,
    node: Node,
    iam: IamService,
) -> None:
    async with node.store.write() as tx:
        await tx.repositories.create_repository(ACCOUNT, "team/app", 0.0)
    password, _ = authentication.issue_password(await _user(identities, iam=iam))
    response = await http.get("/v2/", headers=_basic(password))
    assert response.status_code == 200, response.text
    assert response.json() == {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://registry.test", headers=_basic(password)
    ) as bob:
        digest = await push_blob(bob, "team/app", b"layer")
        assert (await bob.head(f"/v2/team/app/blobs/{digest}")).status_code == 200
        assert (await bob.get("/v2/_catalog")).json() == {"repositories": ["team/app"]}


async def test_get_authorization_token_form_works_as_basic_header(
    http: httpx.AsyncClient, identities: Identities, authentication: Authentication
) -> None:
    token, _ = authentication.issue_authorization_token(await _user(identities))
    response = await http.get("/v2/", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200


async def test_expired_token(
    http: httpx.AsyncClient,
    identities: Identities,
    authentication: Authentication,
    now: list[float],
) -> None:
    password, expires_at = authentication.issue_password(await _user(identities))
    now[0] = expires_at - 1
    assert (await http.get("/v2/", headers=_basic(password))).status_code == 200
    now[0] = expires_at
    response = await http.get("/v2/", headers=_basic(password))
    _expect_401(response)
    assert "expired" in response.json()["errors"][0]["message"]


async def test_tampered_token(
    http: httpx.AsyncClient, identities: Identities, authentication: Authentication
) -> None:
    password, _ = authentication.issue_password(await _user(identities))
    version, payload, mac = password.split(".")
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged = claims.replace(b"user/bob", b"user/eve")
    forged_payload = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    assert forged_payload != payload
    for bad in (f"{version}.{forged_payload}.{mac}", password[:-1], "not-a-token"):
        _expect_401(await http.get("/v2/", headers=_basic(bad)))


async def test_other_usernames_and_schemes(
    http: httpx.AsyncClient, identities: Identities, authentication: Authentication
) -> None:
    password, _ = authentication.issue_password(await _user(identities))
    _expect_401(await http.get("/v2/", headers=_basic(password, user="bob")))
    _expect_401(await http.get("/v2/", headers={"Authorization": f"Bearer {password}"}))
    _expect_401(await http.get("/v2/", headers={"Authorization": "Basic ***"}))


async def test_deactivating_or_deleting_the_key_revokes_the_token(
    http: httpx.AsyncClient,
    identities: Identities,
    identity_admin: IdentityAdmin,
    authentication: Authentication,
    iam: IamService,
) -> None:
    bob = await _user(identities, iam=iam)
    assert bob.access_key_id is not None
    password, _ = authentication.issue_password(bob)
    assert (await http.get("/v2/_catalog", headers=_basic(password))).status_code == 200
    await identity_admin.set_access_key_status(bob.access_key_id, "Inactive")
    _expect_401(await http.get("/v2/_catalog", headers=_basic(password)))
    await identity_admin.set_access_key_status(bob.access_key_id, "Active")
    assert (await http.get("/v2/_catalog", headers=_basic(password))).status_code == 200
    await identity_admin.delete_access_key(bob.access_key_id)
    _expect_401(await http.get("/v2/_catalog", headers=_basic(password)))


async def test_another_accounts_principal_is_denied(
    http: httpx.AsyncClient, node: Node, config: Config, now: list[float], iam: IamService
) -> None:
    stranger_identities = Identities.from_data_dir(
        node.store,
        config.data_path,
        lambda: now[0],
        account_id="210987654321",
        region=config.region,
    )
    # Allowed everything by its own account, but nothing by this one's.
    stranger = await _user(stranger_identities, "mallory", iam=iam)
    password, _ = stranger_identities.authentication.issue_password(stranger)
    # Authenticated (GET /v2/ needs no permission); a plain host is its own (empty) registry.
    assert (await http.get("/v2/", headers=_basic(password))).status_code == 200
    own = await http.get("/v2/_catalog", headers=_basic(password))
    assert own.status_code == 200 and own.json() == {"repositories": []}
    # This registry, addressed by its host, is not open to it.
    this = {**_basic(password), "Host": f"{ACCOUNT}.registry.test"}
    response = await http.get("/v2/_catalog", headers=this)
    expect_error(response, 403, "DENIED")
    message = response.json()["errors"][0]["message"]
    assert message == (
        "User: arn:aws:iam::210987654321:user/mallory is not authorized to perform: "
        f"ecr:DescribeRepositories on resource: arn:aws:ecr:us-east-1:{ACCOUNT}:repository/* "
        "because no resource-based policy allows the ecr:DescribeRepositories action"
    )
    response = await http.post("/v2/team/app/blobs/uploads/", headers=this)
    expect_error(response, 403, "DENIED")
    assert "ecr:InitiateLayerUpload" in response.json()["errors"][0]["message"]
    assert f"{ACCOUNT}:repository/team/app" in response.json()["errors"][0]["message"]


async def test_a_mount_needs_the_source_too(
    http: httpx.AsyncClient,
    identities: Identities,
    identity_admin: IdentityAdmin,
    authentication: Authentication,
    node: Node,
    iam: IamService,
) -> None:
    """A cross-repository mount reads the source: without ecr:GetDownloadUrlForLayer there the
    caller gets a plain upload session, as the spec answers a mount that cannot be done."""
    async with node.store.write() as tx:
        await tx.templates.put_account_setting(ACCOUNT, "BLOB_MOUNTING", "ENABLED")
        for name in ("mount/source", "mount/target"):
            await tx.repositories.create_repository(ACCOUNT, name, 0.0)
    bob = _basic(authentication.issue_password(await _user(identities, iam=iam))[0])
    await identity_admin.create_user("carol")
    target_only = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", '
        f'"Resource": "arn:aws:ecr:us-east-1:{ACCOUNT}:repository/mount/target"}}]}}'
    )
    await iam.put_inline_policy(USER, "carol", "target", target_only)
    key = (await identity_admin.create_access_key("carol")).key.id
    carol_principal = await authentication.principal_for_key(key)
    assert carol_principal is not None
    carol = _basic(authentication.issue_password(carol_principal)[0])
    transport = httpx.ASGITransport(app=FrontApp(node.oci))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as client:
        client.headers.update(bob)
        digest = await push_blob(client, "mount/source", b"shared layer")
    mount = f"/v2/mount/target/blobs/uploads/?mount={digest}&from=mount/source"
    refused = await http.post(mount, headers=carol)
    assert refused.status_code == 202, refused.text  # an upload session, nothing mounted
    assert (await http.head(f"/v2/mount/target/blobs/{digest}", headers=carol)).status_code == 404
    mounted = await http.post(mount, headers=bob)
    assert mounted.status_code == 201, mounted.text
    assert (await http.head(f"/v2/mount/target/blobs/{digest}", headers=carol)).status_code == 200


async def test_registry_open_installs_the_token_gatekeeper(config: Config) -> None:
    opened = await Node.open(config)
    try:
        assert isinstance(opened.oci.gatekeeper, TokenGatekeeper)
        transport = httpx.ASGITransport(app=FrontApp(opened.oci))
        async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
            _expect_401(await client.get("/v2/"))
            identities = Identities.from_data_dir(
                opened.store,
                config.data_path,
                time.time,
                account_id=config.account_id,
                region=config.region,
            )
            admin = await identities.admin.ensure_administrator()
            password, _ = identities.authentication.issue_password(
                admin.user.as_principal(admin.key.id)
            )
            assert (await client.get("/v2/", headers=_basic(password))).status_code == 200
    finally:
        await opened.close()


def test_realm() -> None:
    assert realm_for("https://registry.example.com") == "https://registry.example.com/"
    assert realm_for("http://127.0.0.1:5000/") == "http://127.0.0.1:5000/"
    assert realm_for("https://r.example.com/base") == "https://r.example.com/"
