"""Who may use `/v2/`: Basic credentials carrying a registry token, then one `authorize` call.

Authentication: `Authorization: Basic base64("AWS:" + password)`, the password being what
GetAuthorizationToken (or `cargohold admin login-password`) issued. A missing, malformed,
tampered or expired token, or one whose access key was deactivated or deleted, is answered
with 401 and the challenge ECR sends; the audit log records each rejected one.

The registry a request addresses is the account its host names (`<account>.<host>`, see
`cargohold.http.hosts`), else the caller's own. Authorization: every route's ECR action on the
repository's ARN in that registry goes through `Authorizer.authorize`, with the request's
`aws:SourceIp` and `aws:SecureTransport`, and is recorded in the audit log as the AWS API's
calls are (`cargohold.http.awsrequest`); a denial is 403 DENIED.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

from cargohold.auth.errors import RegistryTokenError
from cargohold.domain.principal import Principal, repository_arn
from cargohold.http.awsrequest import condition_keys, request_record
from cargohold.http.hosts import addressed_account
from cargohold.http.oci import Access, Forbidden, Unauthenticated
from cargohold.service.authentication import Authentication
from cargohold.service.authz import Authorizer

#: The service ECR names in its challenge; clients show it, some match on it.
SERVICE = "ecr.amazonaws.com"


def realm_for(public_url: str) -> str:
    """ECR's realm is the registry's own URL (`https://<registry host>/`)."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}/" if parts.scheme and parts.netloc else public_url


class TokenGatekeeper:
    """The `Gatekeeper` of the OCI front (see `cargohold.http.oci.Gatekeeper`)."""

    def __init__(
        self,
        authentication: Authentication,
        authorizer: Authorizer,
        *,
        account_id: str,
        region: str,
        public_url: str,
    ) -> None:
        self._authentication = authentication
        self._authorizer = authorizer
        self._account_id = account_id
        self._region = region
        self._challenge = f'Basic realm="{realm_for(public_url)}",service="{SERVICE}"'

    async def authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        if not header:
            raise Unauthenticated("authentication required")
        try:
            return await self._authentication.authenticate_basic(header)
        except RegistryTokenError as exc:
            # Audited as a failed sign-in; the messages name no part of what the client sent
            # (auth/errors.py).
            await self._authorizer.authentication_failed(
                exc.oci_code,
                exc.message,
                event_name="Authenticate",
                access_key_id=None,
                record=request_record(
                    request,
                    event_source=SERVICE,
                    region=self._region,
                    parameters={"path": request.url.path[:256]},
                ),
            )
            raise Unauthenticated(exc.message) from None

    def registry_id(self, request: Request, principal: Principal) -> str:
        return addressed_account(request.headers.get("host")) or principal.account_id

    async def authorize(self, request: Request, principal: Principal, access: Access) -> None:
        resource = repository_arn(self._region, access.registry_id, access.repository or "*")
        parameters = {"registryId": access.registry_id}
        if access.repository is not None:
            parameters["repositoryName"] = access.repository
        parameters.update(access.parameters)
        record = request_record(
            request, event_source=SERVICE, region=self._region, parameters=parameters
        )
        decision = await self._authorizer.authorize(
            principal, access.action, resource, condition_keys(request), record=record
        )
        if not decision.allowed:
            raise Forbidden(decision.message)

    def challenge(self) -> str:
        return self._challenge
