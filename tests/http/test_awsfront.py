"""The AWS API pipeline on `POST /` (`AwsFront`): a service described by botocore's model and a
table of handlers is served in its protocol (JSON 1.1 by `X-Amz-Target`, Query by `Action`),
validated, authorized and answered; and every decision, whether it came in as JSON, Query or
`/v2/`, reaches the audit log with one `RequestRecord` shape (request id, region, user agent,
source IP)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any, cast
from xml.etree import ElementTree

import httpx
import pytest
from starlette.requests import Request

from cargohold.domain.errors import AccessDenied
from cargohold.domain.principal import ROOT_PRINCIPAL, Principal
from cargohold.http.awsfront import AwsFront
from cargohold.http.awsservice import AwsCall, AwsService
from cargohold.http.ecr import ecr_service
from cargohold.http.gatekeeper import TokenGatekeeper
from cargohold.http.oci import Access
from cargohold.http.sts import sts_service
from cargohold.service.authentication import Authentication
from cargohold.service.authz import AuthorizationRecord, Authorizer, RequestRecord

pytestmark = pytest.mark.anyio

ACCOUNT = "123456789012"
REGION = "eu-west-1"
CLIENT = ("192.0.2.7", 40000)
AGENT = "cargohold-tests/1.0"
ROOT = Principal(
    account_id=ACCOUNT,
    arn=f"arn:aws:iam::{ACCOUNT}:root",
    principal_id=ACCOUNT,
    kind=ROOT_PRINCIPAL,
)
JSON = "application/x-amz-json-1.1"
FORM = "application/x-www-form-urlencoded"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Signer:
    """Authenticates every call as the account's root, noting the service it was signed for."""

    def __init__(self) -> None:
        self.services: list[str] = []

    async def authenticate(self, request: Request, body: bytes, *, service: str) -> Principal:
        self.services.append(service)
        return ROOT


class Audit:
    def __init__(self) -> None:
        self.entries: list[AuthorizationRecord] = []

    async def record(self, entry: AuthorizationRecord) -> None:
        self.entries.append(entry)


class World:
    """Secrets Manager (JSON 1.1), ECR, STS and IAM (Query) on one front, with the real
    authorizer (only root is allowed, in its own account) writing to an audit log."""

    def __init__(self) -> None:
        self.audit = Audit()
        self.authorizer = Authorizer(lambda: 1_800_000_000.0, audit=self.audit)
        self.signer = Signer()
        self.calls: list[AwsCall] = []
        secrets = AwsService("secretsmanager", {"GetSecretValue": self.get_secret_value})
        sts = sts_service({"GetCallerIdentity": self.who, "AssumeRole": self.assume_role})
        iam = AwsService("iam", {"GetUser": self.get_user})
        ecr = ecr_service({"DescribeRegistry": self.describe_registry})
        self.front = AwsFront([secrets, ecr, sts, iam], self.signer, self.authorize, region=REGION)

    async def authorize(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Mapping[str, Any],
        *,
        record: RequestRecord | None = None,
    ) -> None:
        decision = await self.authorizer.authorize(
            principal, action, resource, context, record=record
        )
        if not decision.allowed:
            raise AccessDenied(decision.message)

    async def get_secret_value(self, call: AwsCall) -> dict[str, Any]:
        self.calls.append(call)
        return {"Name": call.params["SecretId"], "SecretString": "s3cret", "CreatedDate": 1.5}

    async def describe_registry(self, call: AwsCall) -> dict[str, Any]:
        self.calls.append(call)
        return {"registryId": call.registry_id, "replicationConfiguration": {"rules": []}}

    async def who(self, call: AwsCall) -> dict[str, Any]:
        self.calls.append(call)
        return {"UserId": ACCOUNT, "Account": ACCOUNT, "Arn": call.principal.arn}

    async def assume_role(self, call: AwsCall) -> dict[str, Any]:
        self.calls.append(call)
        raise AccessDenied("decided by StsService")

    async def get_user(self, call: AwsCall) -> dict[str, Any]:
        self.calls.append(call)
        if call.params.get("UserName") == "nobody":
            raise AccessDenied("no such access")
        return {
            "User": {
                "Path": "/",
                "UserName": "admin",
                "UserId": "AIDA",
                "Arn": "arn:aws:iam::123456789012:user/admin",
                "CreateDate": 0.0,
            }
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.front(Request(scope, receive))
        await response(scope, receive, send)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
async def http(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=world, client=CLIENT)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://aws.test", headers={"User-Agent": AGENT}
    ) as client:
        yield client


async def call_json(
    http: httpx.AsyncClient, target: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await http.post(
        "/", content=json.dumps(body or {}), headers={"X-Amz-Target": target, "Content-Type": JSON}
    )


async def call_query(http: httpx.AsyncClient, **params: str) -> httpx.Response:
    return await http.post("/", data=params, headers={"Content-Type": FORM})


def xml_text(response: httpx.Response, path: str) -> str:
    root = ElementTree.fromstring(response.content)
    found = root.find(path, {"": root.tag.partition("}")[0].lstrip("{")})
    assert found is not None and found.text is not None, response.text
    return found.text


# -- a service from its model and its handlers ------------------------------------------------


async def test_a_json_service_described_by_its_model_and_handlers_is_served(
    world: World, http: httpx.AsyncClient
) -> None:
    response = await call_json(http, "secretsmanager.GetSecretValue", {"SecretId": "db"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    assert response.json() == {"Name": "db", "SecretString": "s3cret", "CreatedDate": 1.5}
    assert world.signer.services == ["secretsmanager"]
    [entry] = world.audit.entries
    assert (entry.action, entry.resource_arn) == ("secretsmanager:GetSecretValue", "*")
    assert entry.request.event_source == "secretsmanager.amazonaws.com"
    assert entry.request.parameters == {"SecretId": "db"}


async def test_json_services_are_told_apart_by_their_target_prefix(
    world: World, http: httpx.AsyncClient
) -> None:
    response = await call_json(http, "AmazonEC2ContainerRegistry_V20150921.DescribeRegistry")
    assert response.status_code == 200, response.text
    assert response.json()["registryId"] == ACCOUNT
    assert world.signer.services == ["ecr"]
    assert [e.action for e in world.audit.entries] == ["ecr:DescribeRegistry"]


async def test_json_errors_come_from_the_model_and_the_protocol(
    world: World, http: httpx.AsyncClient
) -> None:
    invalid = await call_json(http, "secretsmanager.GetSecretValue", {})
    assert invalid.status_code == 400
    assert invalid.json()["__type"] == "ValidationException"
    assert "Value null at 'SecretId'" in invalid.json()["message"]
    unsupported = await call_json(http, "secretsmanager.ListSecrets")
    assert unsupported.json() == {
        "__type": "UnsupportedOperationException",
        "message": "The operation ListSecrets is not supported by this registry.",
    }
    unknown = await call_json(http, "secretsmanager.Nope")
    assert unknown.json()["__type"] == "UnknownOperationException"
    wrong_type = await call_json(http, "secretsmanager.GetSecretValue", {"SecretId": 7})
    assert wrong_type.json()["__type"] == "SerializationException"
    not_post = await http.get("/")
    assert not_post.status_code == 404
    assert not_post.json()["__type"] == "UnknownOperationException"
    assert world.calls == []


async def test_query_services_are_told_apart_by_their_action(
    world: World, http: httpx.AsyncClient
) -> None:
    sts = await call_query(http, Action="GetCallerIdentity", Version="2011-06-15")
    assert sts.status_code == 200, sts.text
    assert xml_text(sts, "GetCallerIdentityResult/Arn") == ROOT.arn
    assert xml_text(sts, "ResponseMetadata/RequestId") == sts.headers["x-amzn-RequestId"]
    iam = await call_query(http, Action="GetUser", Version="2010-05-08")
    assert xml_text(iam, "GetUserResult/User/UserName") == "admin"
    assert world.signer.services == ["sts", "iam"]
    # IAM's calls are authorized at the front; STS's are not (AssumeRole is StsService's).
    assert [e.action for e in world.audit.entries] == ["iam:GetUser"]


async def test_query_errors_are_error_documents(world: World, http: httpx.AsyncClient) -> None:
    missing = await call_query(http, Version="2011-06-15")
    assert missing.status_code == 400
    assert xml_text(missing, "Error/Code") == "MissingAction"
    denied = await call_query(http, Action="GetUser", Version="2010-05-08", UserName="nobody")
    assert denied.status_code == 403
    assert xml_text(denied, "Error/Code") == "AccessDenied"
    assert xml_text(denied, "RequestId") == denied.headers["x-amzn-RequestId"]
    invalid = await call_query(http, Action="GetUser", Version="2010-05-08", UserName="")
    assert xml_text(invalid, "Error/Code") == "ValidationError"


async def test_assume_role_brings_the_keys_sts_defines(
    world: World, http: httpx.AsyncClient
) -> None:
    await call_query(
        http,
        Action="AssumeRole",
        Version="2011-06-15",
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/partner",
        RoleSessionName="ci-1",
        ExternalId="s3cret",
    )
    [call] = world.calls
    assert call.context["sts:ExternalId"] == "s3cret"
    assert call.context["sts:RoleSessionName"] == "ci-1"
    assert call.context["aws:SourceIp"] == CLIENT[0]
    assert call.record.request_id == call.request_id
    # The front leaves the decision to StsService, which audits it (tests/service/test_sts.py).
    assert world.audit.entries == []


# -- one RequestRecord, whichever door -------------------------------------------------------


async def test_json_query_and_v2_decisions_are_recorded_alike(
    world: World, http: httpx.AsyncClient
) -> None:
    as_json = await call_json(http, "secretsmanager.GetSecretValue", {"SecretId": "db"})
    as_query = await call_query(http, Action="GetUser", Version="2010-05-08")
    gatekeeper = TokenGatekeeper(
        cast(Authentication, None),
        world.authorizer,
        account_id=ACCOUNT,
        region=REGION,
        public_url="http://aws.test",
    )
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/v2/app/manifests/latest",
        "headers": [(b"user-agent", AGENT.encode()), (b"host", b"aws.test")],
        "client": CLIENT,
        "scheme": "http",
        "query_string": b"",
    }
    v2 = Request(scope)
    await gatekeeper.authorize(v2, ROOT, Access("ecr:BatchGetImage", ACCOUNT, "app"))

    json_entry, query_entry, v2_entry = world.audit.entries
    for entry in (json_entry, query_entry, v2_entry):
        assert entry.request.region == REGION
        assert entry.request.user_agent == AGENT
        assert entry.request.source_ip == entry.source_ip == CLIENT[0]
        assert entry.request.request_id
    assert json_entry.request.request_id == as_json.headers["x-amzn-RequestId"]
    assert query_entry.request.request_id == as_query.headers["x-amzn-RequestId"]
    assert [e.request.event_source for e in world.audit.entries] == [
        "secretsmanager.amazonaws.com",
        "iam.amazonaws.com",
        "ecr.amazonaws.com",
    ]
    # Every decision for one /v2/ request carries the same request id.
    await gatekeeper.authorize(v2, ROOT, Access("ecr:GetDownloadUrlForLayer", ACCOUNT, "app"))
    assert world.audit.entries[-1].request.request_id == v2_entry.request.request_id
