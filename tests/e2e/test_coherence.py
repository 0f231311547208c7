"""Two processes of one registry read each other's writes at once.

Two `cargohold serve` processes share one data directory and one database, as the workers of
`serve --workers 2` (or two nodes) do, and each request goes to the process the test names:
a write through one is seen by the very next request to the other, after that other process
has just read (and cached) what was there before. IAM changes take effect within 1 s. On SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from botocore.exceptions import ClientError

from support.fixtures import CLEAN_EXITS
from support.images import OCI_MANIFEST
from support.server import RegistryServer
from support.v2 import TinyImage, push_blob, push_image
from support.waiting import wait_until

pytestmark = pytest.mark.e2e

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
ACCOUNT = "123456789012"
MOVES = 1000
#: How long an IAM change may take to reach every process (docs/ARCHITECTURE.md, "Read cache").
IAM_BOUND = 1.0


class SharedServer(RegistryServer):
    """A server on a data directory another one serves too, and on `database_url` if given."""

    def __init__(self, data_dir: Path, log_path: Path, database_url: str | None) -> None:
        super().__init__(data_dir, log_path)
        self.database_url = database_url

    def _env(self) -> dict[str, str]:
        env = super()._env()
        if self.database_url is not None:
            env["CARGOHOLD_DATABASE_URL"] = self.database_url
        return env


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose connections live in a schema of their own, dropped afterwards."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _stop(server: RegistryServer) -> None:
    code = server.stop()
    assert code in CLEAN_EXITS, f"exited with {code} on SIGTERM\n{server.log_tail()}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RegistryServer, RegistryServer]]:
    """Two processes of one registry, the second started once the first has set it up."""
    root = tmp_path_factory.mktemp(f"coherence-{request.param}")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_schema()) if request.param == "postgresql" else None
        servers = []
        for name in ("a", "b"):
            server = SharedServer(root / "data", root / f"{name}.log", url)
            server.start()
            stack.callback(_stop, server)
            servers.append(server)
        first, second = servers
        yield first, second


def v2_client(server: RegistryServer, password: str | None = None) -> httpx.Client:
    """A keep-alive `/v2/` client of `server`: every request goes to that process."""
    auth = httpx.BasicAuth("AWS", password or server.login_password())
    return httpx.Client(base_url=server.url, auth=auth, timeout=30)


def manifest_digest(client: httpx.Client, name: str, reference: str) -> str | None:
    """The digest `reference` names in `name` as this process answers, or None if unknown."""
    answer = client.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    return answer.headers["Docker-Content-Digest"]


def test_a_moved_tag_is_seen_by_the_very_next_request_to_the_other_process(
    pair: tuple[RegistryServer, RegistryServer],
) -> None:
    name = "coherence/moves"
    pair[0].create_repository(name)
    images = [TinyImage.make(f"move-{n}") for n in range(2)]
    with v2_client(pair[0]) as first, v2_client(pair[1]) as second:
        for image in reversed(images):  # `latest` names images[0]
            assert push_image(first, name, "latest", image).status_code == 201
        clients = (first, second)
        stale: list[int] = []
        for move in range(MOVES):
            writer, reader = clients[move % 2], clients[1 - move % 2]
            old, new = images[move % 2], images[1 - move % 2]
            assert manifest_digest(reader, name, "latest") == old.digest  # read, and kept
            answer = writer.put(
                f"/v2/{name}/manifests/latest",
                content=new.manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert answer.status_code == 201, answer.text
            if manifest_digest(reader, name, "latest") != new.digest:
                stale.append(move)
    assert stale == [], f"{len(stale)} stale reads of {MOVES}, at moves {stale[:20]}"


def test_deletes_are_seen_by_the_very_next_request_to_the_other_process(
    pair: tuple[RegistryServer, RegistryServer],
) -> None:
    name = "coherence/deletes"
    pair[0].create_repository(name)
    tagged, doomed, loose = (TinyImage.make(f"delete-{n}") for n in range(3))
    with v2_client(pair[0]) as first, v2_client(pair[1]) as second:
        assert push_image(first, name, "tagged", tagged).status_code == 201
        assert push_image(first, name, "doomed", doomed).status_code == 201
        assert push_blob(first, name, loose.layer).status_code == 201

        # A tag deleted through one process is gone from the other's next answer.
        assert manifest_digest(second, name, "tagged") == tagged.digest
        assert first.delete(f"/v2/{name}/manifests/tagged").status_code == 202
        assert manifest_digest(second, name, "tagged") is None

        # So is an image deleted by digest, by its tag and by its digest alike.
        assert manifest_digest(first, name, "doomed") == doomed.digest
        assert manifest_digest(first, name, doomed.digest) == doomed.digest
        assert second.delete(f"/v2/{name}/manifests/{doomed.digest}").status_code == 202
        assert manifest_digest(first, name, "doomed") is None
        assert manifest_digest(first, name, doomed.digest) is None

        # And a blob unlinked from the repository.
        blob = f"/v2/{name}/blobs/{loose.layer_digest}"
        assert second.head(blob).status_code == 200
        assert first.delete(blob).status_code == 202
        assert second.head(blob).status_code == 404

        # An ECR BatchDeleteImage of a tag, through the other process the other way round.
        assert push_image(second, name, "again", doomed).status_code == 201
        assert manifest_digest(first, name, "again") == doomed.digest
        answer = (
            pair[1]
            .ecr_client()
            .batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "again"}])
        )
        assert answer["failures"] == []
        assert manifest_digest(first, name, "again") is None

        # A repository deleted through one process is unknown to the other at once.
        assert manifest_digest(second, name, tagged.digest) == tagged.digest
        pair[0].ecr_client().delete_repository(repositoryName=name, force=True)
        answer = second.get(f"/v2/{name}/manifests/{tagged.digest}")
        assert answer.status_code == 404 and answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def _deny(user_arn: str, **resource: str) -> str:
    """A resource policy refusing `user_arn` pulls (a registry policy names its `Resource`)."""
    statement = {
        "Sid": "NoPulls",
        "Effect": "Deny",
        "Principal": {"AWS": user_arn},
        "Action": "ecr:BatchGetImage",
        **resource,
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _allow_ecr() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}],
        }
    )


def _user(server: RegistryServer, name: str) -> tuple[str, str, str]:
    """An IAM user allowed every ECR action: its ARN, access key id and secret."""
    iam = server.iam_client()
    arn: str = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="ecr", PolicyDocument=_allow_ecr())
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, key["AccessKeyId"], key["SecretAccessKey"]


def _password(server: RegistryServer, key: str, secret: str) -> str:
    data = server.ecr_client(key=key, secret=secret).get_authorization_token()
    token: str = data["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().removeprefix("AWS:")


def test_policy_changes_are_seen_by_the_very_next_request_to_the_other_process(
    pair: tuple[RegistryServer, RegistryServer],
) -> None:
    name = "coherence/policies"
    pair[0].create_repository(name)
    image = TinyImage.make("policies")
    with v2_client(pair[0]) as admin:
        assert push_image(admin, name, "latest", image).status_code == 201
    arn, key, secret = _user(pair[0], "policy-reader")
    password = _password(pair[0], key, secret)
    changes: list[tuple[Callable[[Any], object], Callable[[Any], object]]] = [
        (
            lambda ecr: ecr.set_repository_policy(repositoryName=name, policyText=_deny(arn)),
            lambda ecr: ecr.delete_repository_policy(repositoryName=name),
        ),
        (
            lambda ecr: ecr.put_registry_policy(
                policyText=_deny(arn, Resource=f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/*")
            ),
            lambda ecr: ecr.delete_registry_policy(),
        ),
    ]
    with v2_client(pair[0], password) as first, v2_client(pair[1], password) as second:
        clients = (first, second)
        for round_ in range(20):
            put, delete = changes[round_ % 2]
            writer, reader = pair[round_ % 2], clients[1 - round_ % 2]
            path = f"/v2/{name}/manifests/latest"
            assert reader.get(path, headers={"Accept": OCI_MANIFEST}).status_code == 200
            put(writer.ecr_client())
            answer = reader.get(path, headers={"Accept": OCI_MANIFEST})
            assert answer.status_code == 403, f"round {round_}: the new policy was not seen"
            assert answer.json()["errors"][0]["code"] == "DENIED"
            delete(writer.ecr_client())
            answer = reader.get(path, headers={"Accept": OCI_MANIFEST})
            assert answer.status_code == 200, f"round {round_}: the deleted policy still held"


def _refused_within(bound: float, refused: Callable[[], bool], what: str) -> float:
    """Seconds until `refused()` held; fails past `bound`."""
    start = time.monotonic()
    wait_until(refused, timeout=bound, interval=0.01, message=what)
    return time.monotonic() - start


def test_iam_changes_take_effect_within_the_bound_on_the_other_process(
    pair: tuple[RegistryServer, RegistryServer],
) -> None:
    name = "coherence/iam"
    pair[0].create_repository(name)
    with v2_client(pair[0]) as admin:
        assert push_image(admin, name, "latest", TinyImage.make("iam")).status_code == 201
    path = f"/v2/{name}/manifests/latest"

    # A deactivated key stops its /v2/ tokens and its signed calls on the other process.
    _arn, key, secret = _user(pair[0], "deactivated")
    password = _password(pair[1], key, secret)
    user_ecr = pair[1].ecr_client(key=key, secret=secret)
    with v2_client(pair[1], password) as reader:
        assert reader.get(path, headers={"Accept": OCI_MANIFEST}).status_code == 200
        assert user_ecr.describe_repositories(repositoryNames=[name])["repositories"]
        pair[0].iam_client().update_access_key(
            UserName="deactivated", AccessKeyId=key, Status="Inactive"
        )

        def refused_v2() -> bool:
            return reader.get(path, headers={"Accept": OCI_MANIFEST}).status_code == 401

        def refused_signed() -> bool:
            try:
                user_ecr.describe_repositories(repositoryNames=[name])
            except ClientError as exc:
                return exc.response["Error"]["Code"] == "UnrecognizedClientException"
            return False

        _refused_within(IAM_BOUND, refused_v2, "the deactivated key's token still pulls")
        _refused_within(IAM_BOUND, refused_signed, "the deactivated key still signs")

    # An identity policy taken away stops what it allowed.
    _arn, key, secret = _user(pair[1], "unpolicied")
    password = _password(pair[0], key, secret)
    with v2_client(pair[0], password) as reader:
        assert reader.get(path, headers={"Accept": OCI_MANIFEST}).status_code == 200
        pair[1].iam_client().delete_user_policy(UserName="unpolicied", PolicyName="ecr")

        def denied() -> bool:
            return reader.get(path, headers={"Accept": OCI_MANIFEST}).status_code == 403

        _refused_within(IAM_BOUND, denied, "the deleted identity policy still allows pulls")
