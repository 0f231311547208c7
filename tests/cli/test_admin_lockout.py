"""The way out of a lock-out: a repository or registry policy that denies everyone, even the
administrator, is deleted by `cargohold admin repository-policy delete REPO` and
`cargohold admin registry-policy delete`, which act on the database as the account's root."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from support.fixtures import LiveServers
from support.server import RegistryServer

DENY_EVERYONE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "ecr:*"}],
    }
)


@pytest.fixture(scope="module")
def server(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("lockout")


def admin(server: RegistryServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", "admin", *args, "--data-dir", str(server.data_dir)],
        env=server._env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_a_repository_policy_that_locks_everyone_out_is_deleted_by_the_admin_command(
    server: RegistryServer,
) -> None:
    ecr = server.ecr_client()
    ecr.create_repository(repositoryName="locked")
    ecr.set_repository_policy(repositoryName="locked", policyText=DENY_EVERYONE, force=True)
    with pytest.raises(ClientError) as denied:
        ecr.delete_repository_policy(repositoryName="locked")
    assert error_code(denied) == "AccessDeniedException"
    with pytest.raises(ClientError) as denied:
        ecr.describe_images(repositoryName="locked")
    assert error_code(denied) == "AccessDeniedException"

    done = admin(server, "repository-policy", "delete", "locked")
    assert done.returncode == 0, done.stderr
    assert "deleted the repository policy of locked" in done.stdout

    ecr.describe_images(repositoryName="locked")
    with pytest.raises(ClientError) as gone:
        ecr.get_repository_policy(repositoryName="locked")
    assert error_code(gone) == "RepositoryPolicyNotFoundException"

    again = admin(server, "repository-policy", "delete", "locked")
    assert again.returncode == 1 and "does not exist" in again.stderr
    missing = admin(server, "repository-policy", "delete", "no-such-repository")
    assert missing.returncode == 1 and "no-such-repository" in missing.stderr


def test_a_registry_policy_that_locks_everyone_out_is_deleted_by_the_admin_command(
    server: RegistryServer,
) -> None:
    ecr = server.ecr_client()
    ecr.create_repository(repositoryName="registry-locked")
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "ecr:*",
                    "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/*",
                }
            ],
        }
    )
    ecr.put_registry_policy(policyText=policy)
    with pytest.raises(ClientError) as denied:
        ecr.describe_images(repositoryName="registry-locked")
    assert error_code(denied) == "AccessDeniedException"

    done = admin(server, "registry-policy", "delete")
    assert done.returncode == 0, done.stderr
    assert "deleted the registry policy of account 123456789012" in done.stdout
    ecr.describe_images(repositoryName="registry-locked")
    with pytest.raises(ClientError) as gone:
        ecr.get_registry_policy()
    assert error_code(gone) == "RegistryPolicyNotFoundException"
    again = admin(server, "registry-policy", "delete")
    assert again.returncode == 1 and "does not exist" in again.stderr


def test_an_account_with_repositories_is_not_deleted(server: RegistryServer) -> None:
    created = admin(server, "account", "create", "210987654321")
    assert created.returncode == 0, created.stderr
    key = created.stdout.split("access key: ")[1].split()[0]
    secret = created.stdout.split("secret access key: ")[1].split()[0]
    other = server.ecr_client(key=key, secret=secret)
    other.create_repository(repositoryName="held")
    refused = admin(server, "account", "delete", "210987654321")
    assert refused.returncode == 1 and "still holds repositories (such as held)" in refused.stderr
    other.delete_repository(repositoryName="held", force=True)
    deleted = admin(server, "account", "delete", "210987654321")
    assert deleted.returncode == 0, deleted.stderr
    with pytest.raises(ClientError) as gone:
        other.describe_repositories()
    assert error_code(gone) in ("UnrecognizedClientException", "InvalidClientTokenId")
