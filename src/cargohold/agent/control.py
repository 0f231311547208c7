"""The agent's side of ECS: the ECS API through boto3 with the agent's own credentials (the
standard AWS chain, as an instance role), and the signed request for a task's role credentials
(`POST /_ecs/credentials`)."""

from __future__ import annotations

import base64
import calendar
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

CREDENTIALS_PATH = "/_ecs/credentials"
#: Credentials are fetched again this long before they expire.
REFRESH_BEFORE = 900.0


class CredentialsError(Exception):
    pass


@dataclass(frozen=True)
class RoleCredentials:
    role_arn: str
    access_key_id: str
    secret_access_key: str
    token: str
    #: ISO 8601, as ECS's credentials endpoint gives it.
    expiration: str
    expires_at: float

    def endpoint_document(self) -> dict[str, str]:
        return {
            "RoleArn": self.role_arn,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.token,
            "Expiration": self.expiration,
        }


class Control:
    def __init__(self, endpoint_url: str, session: boto3.Session | None = None) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.session = session or boto3.Session()
        region = self.session.region_name or "us-east-1"
        self.region = region
        config = BotoConfig(retries={"max_attempts": 3, "mode": "standard"})
        self.ecs: Any = self.session.client(
            "ecs", endpoint_url=self.endpoint_url, region_name=region, config=config
        )

    def role_credentials(
        self, cluster: str, instance_arn: str, task_arn: str, role: str
    ) -> RoleCredentials:
        body = json.dumps(
            {"cluster": cluster, "containerInstance": instance_arn, "task": task_arn, "role": role}
        ).encode()
        url = self.endpoint_url + CREDENTIALS_PATH
        request = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/json"})
        credentials = self.session.get_credentials()
        if credentials is None:
            raise CredentialsError("the agent has no AWS credentials")
        SigV4Auth(credentials.get_frozen_credentials(), "ecs", self.region).add_auth(request)
        try:
            response = httpx.post(url, content=body, headers=dict(request.headers), timeout=30.0)
        except httpx.HTTPError as exc:
            raise CredentialsError(str(exc)) from None
        document = response.json()
        if response.status_code != 200:
            raise CredentialsError(f"{document.get('__type')}: {document.get('message')}")
        expires = calendar.timegm(time.strptime(document["Expiration"], "%Y-%m-%dT%H:%M:%SZ"))
        return RoleCredentials(
            document["RoleArn"],
            document["AccessKeyId"],
            document["SecretAccessKey"],
            document["Token"],
            document["Expiration"],
            float(expires),
        )

    def client(self, service: str, credentials: RoleCredentials | None) -> Any:
        """A boto3 client of the registry's endpoint with these credentials (None: the
        agent's own)."""
        session = self.session
        if credentials is not None:
            session = boto3.Session(
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.token,
            )
        client: Any = session.client(  # type: ignore[call-overload]
            service, endpoint_url=self.endpoint_url, region_name=self.region
        )
        return client

    def registry_token(self, credentials: RoleCredentials | None) -> str:
        """The `/v2/` password ECR's GetAuthorizationToken gives these credentials (None: the
        agent's own)."""
        ecr = self.client("ecr", credentials)
        try:
            data = ecr.get_authorization_token()["authorizationData"][0]
        except (ClientError, BotoCoreError) as exc:
            raise CredentialsError(str(exc)) from None
        return base64.b64decode(data["authorizationToken"]).decode().removeprefix("AWS:")


class RefreshingCredentials:
    """A task role's credentials, fetched again before they expire."""

    def __init__(self, fetch: Any) -> None:
        self._fetch = fetch
        self._current: RoleCredentials | None = None
        self._lock = threading.Lock()

    def get(self) -> RoleCredentials:
        with self._lock:
            if self._current is None or self._current.expires_at - time.time() < REFRESH_BEFORE:
                self._current = self._fetch()
            assert self._current is not None
            return self._current
