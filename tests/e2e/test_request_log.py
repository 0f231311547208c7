"""Logs: `log_format = "json"` writes one JSON object per line with one record per request, and
no secret reaches the log in either format, whatever a full workflow sends.

The workflow: the aws CLI (signed calls, get-login-password), skopeo pushing and pulling with the
login password, a presigned layer download, a wrong password and a denied call.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from support.clients import Skopeo, require_tool
from support.fixtures import LiveServers
from support.images import OciLayout, small_image
from support.server import RegistryServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

#: What `serve` prints on standard output before it logs (they are not log records).
PRINTED = ("credentials: ", "cargohold serving ", "created the administrator", "=== start")


def workflow(server: RegistryServer, tmp: Path) -> list[str]:
    """Run the workflow; every secret it handled, for the caller to look for in the log."""
    admin = server.admin_credentials()
    env = {
        **{k: v for k, v in server._env().items() if not k.startswith("AWS_")},
        **admin,
        "AWS_CONFIG_FILE": str(tmp / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-credentials"),
    }
    aws = require_tool("aws")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [aws, *args], env=env, capture_output=True, text=True, check=False, timeout=120
        )

    assert run("ecr", "create-repository", "--repository-name", "logs/app").returncode == 0
    password = run("ecr", "get-login-password").stdout.strip()
    token = server.ecr_client().get_authorization_token()["authorizationData"][0][
        "authorizationToken"
    ]
    layout = OciLayout(tmp / "oci")
    image = small_image(layout, tag="v1")
    skopeo = Skopeo(server, tmp / "skopeo")
    skopeo("copy", layout.reference("v1"), skopeo.ref("logs/app", "v1"))
    skopeo("inspect", "--raw", skopeo.ref("logs/app", "v1"))
    layer = image.layers[0].descriptor.digest
    url = server.ecr_client().get_download_url_for_layer(
        repositoryName="logs/app", layerDigest=layer
    )["downloadUrl"]
    assert httpx.get(url).status_code == 200
    wrong = httpx.get(f"{server.url}/v2/", auth=("AWS", password[:-4] + "AAAA"))
    assert wrong.status_code == 401
    user = server.iam_client().create_user(UserName="nobody")["User"]["UserName"]
    key = server.iam_client().create_access_key(UserName=user)["AccessKey"]
    denied = server.ecr_client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    with pytest.raises(Exception, match="AccessDenied"):
        denied.describe_repositories()
    # The presigned URL's query string carries its signature.
    query = httpx.URL(url).query.decode()
    signature = max(query.split("&"), key=len).partition("=")[2] if query else ""
    secrets = [
        admin["AWS_SECRET_ACCESS_KEY"],
        key["SecretAccessKey"],
        password,
        token,
        base64.b64encode(f"AWS:{password}".encode()).decode(),
        *([signature] if signature else []),
    ]
    return [secret for secret in secrets if secret]


def assert_no_secret(log: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in log
        assert secret[:24] not in log  # nor a recognisable part of one
    lowered = log.lower()
    assert "authorization:" not in lowered
    assert "basic " not in lowered
    assert "bearer " not in lowered


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_secret_reaches_the_log(
    live_servers: LiveServers, tmp_path: Path, log_format: str
) -> None:
    config = tmp_path / "cargohold.toml"
    config.write_text(f'log_format = "{log_format}"\n')
    server = live_servers.start(f"log-{log_format}", extra_args=("--config", str(config)))
    secrets = workflow(server, tmp_path)
    server.stop()
    assert_no_secret(server.log_path.read_text(), secrets)


def test_json_log_has_one_object_per_line_and_one_record_per_request(
    live_servers: LiveServers, tmp_path: Path
) -> None:
    config = tmp_path / "cargohold.toml"
    config.write_text('log_format = "json"\n')
    server = live_servers.start("log-shape", extra_args=("--config", str(config)))
    server.create_repository("logs/shape")
    listed = server.ecr_client().describe_repositories(repositoryNames=["logs/shape"])
    aws_request_id = listed["ResponseMetadata"]["RequestId"]
    with server.client() as http:
        tags = http.get("/v2/logs/shape/tags/list")
        missing = http.get("/v2/logs/shape/manifests/absent")
    server.stop()
    records = []
    for line in server.log_path.read_text().splitlines():
        if not line.strip() or line.startswith(PRINTED):
            continue
        records.append(json.loads(line))  # every other line is one JSON object
    requests = [r for r in records if r["logger"] == "cargohold.request"]
    by_id = {r["request_id"]: r for r in requests}
    described = by_id[aws_request_id]
    assert described["principal"].endswith(":user/admin")
    assert described["action"] == "ecr:DescribeRepositories"
    assert described["repository"] == "logs/shape"
    assert described["status"] == 200
    assert described["duration_ms"] >= 0
    assert {"time", "level"} <= described.keys()
    listed_v2 = by_id[tags.headers["x-amzn-RequestId"]]
    assert listed_v2["action"] == "ecr:ListImages"
    assert listed_v2["path"] == "/v2/logs/shape/tags/list"
    assert by_id[missing.headers["x-amzn-RequestId"]]["status"] == 404
    assert all(r["level"] in ("debug", "info", "warning", "error", "critical") for r in records)
