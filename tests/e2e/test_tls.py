"""HTTPS: `cargohold admin tls init`, then the server on its certificate with the real clients.

skopeo and podman trust the CA through a certificate directory of the test's own
(`--cert-dir`), the `aws` CLI through the `ca_bundle` of the profile `tls init` wrote, boto3
and httpx through the CA file; the machine's own trust stores are never touched. Clients that
do not trust the CA, and certificates that expired or name another host, are refused.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import SSLError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cargohold import tls_init
from support.clients import Podman, require_tool
from support.dockerd import DockerCli
from support.images import OciLayout, small_image
from support.server import RegistryServer
from support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ACCOUNT_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


class TlsRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.paths = tls_init.TlsPaths(self.data / "tls")
        self.config = root / "cargohold.toml"
        self.server = RegistryServer(
            self.data,
            root / "server.log",
            extra_args=("--config", str(self.config)),
            tls_ca=self.paths.ca_cert,
        )
        self.env = self.server._env()
        self.init_output = self.cargohold("admin", "tls", "init", "--host", "registry.test")
        self.config.write_text(
            f'tls_cert = "{self.paths.cert}"\ntls_key = "{self.paths.key}"\n'
            "body_idle_timeout_seconds = 5\n"
        )
        self.good_cert = self.paths.cert.read_bytes()

    def cargohold(self, *args: str) -> str:
        command = [sys.executable, "-m", "cargohold", *args, "--data-dir", str(self.data)]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def served_certificate(self) -> x509.Certificate:
        pem = ssl.get_server_certificate(("127.0.0.1", self.server.port))
        return x509.load_pem_x509_certificate(pem.encode())

    def serve_certificate(self, pem: bytes) -> None:
        """Replace the certificate file and SIGHUP the server until it serves it."""
        self.paths.cert.write_bytes(pem)
        wanted = x509.load_pem_x509_certificates(pem)[0].serial_number
        os.kill(self.server.pid, signal.SIGHUP)
        wait_until(lambda: self.served_certificate().serial_number == wanted, timeout=10)

    def signed(self, hosts: list[str], *, expired: bool = False) -> bytes:
        """A certificate for the server's key... signed by the CA (for `hosts`)."""
        ca_cert = x509.load_pem_x509_certificate(self.paths.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(self.paths.ca_key.read_bytes(), None)
        server_key = serialization.load_pem_private_key(self.paths.key.read_bytes(), None)
        now = datetime.datetime.now(datetime.UTC)
        cert, _ = tls_init.make_server_cert(
            ca_cert,
            ca_key,  # type: ignore[arg-type]
            hosts,
            not_before=now - datetime.timedelta(days=10) if expired else None,
            not_after=now - datetime.timedelta(days=1) if expired else None,
            key=server_key,  # type: ignore[arg-type]
        )
        return cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(
            serialization.Encoding.PEM
        )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRegistry]:
    registry = TlsRegistry(tmp_path_factory.mktemp("tls"))
    registry.server.start()
    try:
        yield registry
    finally:
        registry.server.stop()


def aws(
    tls: TlsRegistry, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    binary = require_tool("aws")
    return subprocess.run(
        [binary, "--profile", "cargohold", *args],
        env=env or tls.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def cert_dir(tls: TlsRegistry, tmp_path: Path) -> Path:
    """A containers-style certificate directory holding the CA."""
    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / "ca.crt").write_bytes(tls.paths.ca_cert.read_bytes())
    return directory


def skopeo_env(tmp_path: Path) -> dict[str, str]:
    """No registries.conf entry for the server: TLS is verified as for any registry."""
    conf = tmp_path / "registries.conf"
    conf.write_text("unqualified-search-registries = []\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf), "TMPDIR": str(tmp)}


def skopeo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("skopeo"), "--insecure-policy", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def creds(tls: TlsRegistry) -> str:
    return f"AWS:{tls.server.login_password()}"


# -- the certificate helper ---------------------------------------------------------------------


def test_tls_init_names_every_host_and_says_how_to_trust_the_ca(tls: TlsRegistry) -> None:
    cert = x509.load_pem_x509_certificates(tls.good_cert)[0]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = names.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    assert {"localhost", ACCOUNT_HOST, "registry.test"} <= set(dns)
    assert "127.0.0.1" in ips
    out = tls.init_output
    ca = str(tls.paths.ca_cert)
    assert f"{ca} /etc/docker/certs.d/HOST/ca.crt" in out
    assert f"{ca} /etc/containers/certs.d/HOST/ca.crt" in out
    assert f"AWS_CA_BUNDLE={ca}" in out
    profile = Path(tls.env["AWS_CONFIG_FILE"]).read_text()
    assert f"ca_bundle = {ca}" in profile
    assert f"endpoint_url = https://127.0.0.1:{tls.server.port}" in profile
    assert (tls.paths.key.stat().st_mode & 0o077) == 0
    assert (tls.paths.ca_key.stat().st_mode & 0o077) == 0


def test_tls_init_again_keeps_the_ca(tls: TlsRegistry, tmp_path: Path) -> None:
    env = {
        **tls.env,
        "AWS_CONFIG_FILE": str(tmp_path / "c"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "k"),
    }
    before = tls.paths.ca_cert.read_bytes()
    data = tmp_path / "copy"
    (data / "tls").mkdir(parents=True)
    for name in ("ca.crt", "ca.key"):
        (data / "tls" / name).write_bytes((tls.paths.directory / name).read_bytes())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cargohold",
            "admin",
            "tls",
            "init",
            "--no-profile",
            "--data-dir",
            str(data),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "(kept)" in result.stdout
    assert (data / "tls" / "ca.crt").read_bytes() == before


# -- clients that trust the CA ------------------------------------------------------------------


def test_the_aws_cli_works_over_https_with_the_profile_tls_init_wrote(tls: TlsRegistry) -> None:
    assert "AWS_CA_BUNDLE" not in tls.env
    created = aws(tls, "ecr", "create-repository", "--repository-name", "tls/cli")
    assert created.returncode == 0, created.stderr
    assert f"127.0.0.1:{tls.server.port}/tls/cli" in created.stdout
    password = aws(tls, "ecr", "get-login-password")
    assert password.returncode == 0, password.stderr
    response = httpx.get(
        f"{tls.server.url}/v2/",
        auth=("AWS", password.stdout.strip()),
        verify=tls.server.ssl_context(),
    )
    assert response.status_code == 200


def test_skopeo_and_podman_push_and_pull_over_https(
    tls: TlsRegistry, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tls.server.create_repository("tls/app")
    layout = OciLayout(tmp_path / "oci")
    image = small_image(layout, tag="v1")
    certs = cert_dir(tls, tmp_path)
    env = skopeo_env(tmp_path)
    target = f"docker://{tls.server.host}/tls/app:v1"
    pushed = skopeo(
        env,
        "copy",
        "--dest-cert-dir",
        str(certs),
        "--dest-creds",
        creds(tls),
        layout.reference("v1"),
        target,
    )
    assert pushed.returncode == 0, pushed.stderr
    raw = skopeo(env, "inspect", "--raw", "--cert-dir", str(certs), "--creds", creds(tls), target)
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout.encode() == image.manifest

    podman = Podman(tls.server, tmp_path_factory.mktemp("pm"))  # a short runroot
    podman.env["CONTAINERS_REGISTRIES_CONF"] = env["CONTAINERS_REGISTRIES_CONF"]
    pulled = podman("pull", "--cert-dir", str(certs), f"{tls.server.host}/tls/app:v1", check=False)
    assert pulled.returncode == 0, pulled.stderr
    assert image.digest in podman("images", "--digests").stdout


def test_boto3_over_https_with_the_ca(tls: TlsRegistry) -> None:
    exported = tls.server.admin_credentials()  # `admin credentials`' export lines
    assert exported["AWS_CA_BUNDLE"] == str(tls.paths.ca_cert)
    assert exported["AWS_ENDPOINT_URL_ECR"] == f"https://127.0.0.1:{tls.server.port}"
    data = tls.server.ecr_client().get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == f"https://127.0.0.1:{tls.server.port}"
    assert base64.b64decode(data["authorizationToken"]).startswith(b"AWS:")


# -- refusals -----------------------------------------------------------------------------------


def test_clients_that_do_not_trust_the_ca_are_refused(tls: TlsRegistry, tmp_path: Path) -> None:
    env = skopeo_env(tmp_path)
    refused = skopeo(
        env, "inspect", "--raw", "--creds", creds(tls), f"docker://{tls.server.host}/tls/app:v1"
    )
    assert refused.returncode != 0
    assert "certificate signed by unknown authority" in refused.stderr
    untrusting = aws(
        tls, "ecr", "describe-repositories", "--ca-bundle", "/etc/ssl/certs/ca-certificates.crt"
    )
    assert untrusting.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in untrusting.stderr
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls.server.url}/v2/")


def test_plain_http_to_the_tls_port_gets_a_clear_error(tls: TlsRegistry) -> None:
    response = httpx.get(f"http://{tls.server.host}/v2/")
    assert response.status_code == 400
    assert "speaks HTTPS only" in response.text
    assert "https://" in response.text


def test_a_silent_connection_is_closed(tls: TlsRegistry) -> None:
    """A connection that never sends a byte is not kept (closed at the head timeout, 5 s)."""
    with socket.create_connection(("127.0.0.1", tls.server.port), timeout=30) as sock:
        assert sock.recv(1) == b""


def ecr_with_ca(tls: TlsRegistry, host: str = "127.0.0.1") -> object:
    creds_ = tls.server.admin_credentials()
    return boto3.client(
        "ecr",
        endpoint_url=f"https://{host}:{tls.server.port}",
        region_name="us-east-1",
        aws_access_key_id=creds_["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds_["AWS_SECRET_ACCESS_KEY"],
        verify=str(tls.paths.ca_cert),
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def test_expired_and_wrong_host_certificates_are_refused(tls: TlsRegistry, tmp_path: Path) -> None:
    env = skopeo_env(tmp_path)
    certs = cert_dir(tls, tmp_path)
    target = f"docker://{tls.server.host}/tls/app:v1"
    inspect = ("inspect", "--raw", "--cert-dir", str(certs), "--creds", creds(tls), target)
    try:
        tls.serve_certificate(tls.signed(["127.0.0.1", "localhost"], expired=True))
        refused = skopeo(env, *inspect)
        assert refused.returncode != 0
        assert "expired" in refused.stderr
        with pytest.raises(SSLError, match="expired"):
            ecr_with_ca(tls).describe_repositories()  # type: ignore[attr-defined]

        tls.serve_certificate(tls.signed(["elsewhere.test", "127.0.0.2"]))
        refused = skopeo(env, *inspect)
        assert refused.returncode != 0
        assert "certificate is valid for 127.0.0.2, not 127.0.0.1" in refused.stderr
        with pytest.raises(SSLError, match="match"):
            ecr_with_ca(tls).describe_repositories()  # type: ignore[attr-defined]
    finally:
        tls.serve_certificate(tls.good_cert)
    assert skopeo(env, *inspect).returncode == 0
    assert "repositories" in ecr_with_ca(tls).describe_repositories()  # type: ignore[attr-defined]


def test_sighup_reloads_the_certificate_without_dropping_an_upload_in_flight(
    tls: TlsRegistry,
) -> None:
    tls.server.create_repository("tls/reload")
    renewed = tls.signed(["127.0.0.1", "localhost"])
    first, second = b"sent before the reload, ", b"and after it"
    digest = "sha256:" + hashlib.sha256(first + second).hexdigest()

    def body() -> Iterator[bytes]:
        yield first
        tls.serve_certificate(renewed)  # while this request is being sent
        yield second

    try:
        with tls.server.client() as http:
            started = http.post("/v2/tls/reload/blobs/uploads/")
            assert started.status_code == 202
            done = http.put(started.headers["location"], params={"digest": digest}, content=body())
            assert done.status_code == 201, done.text
            served = tls.served_certificate().serial_number
            assert served == x509.load_pem_x509_certificates(renewed)[0].serial_number
            assert http.head(f"/v2/tls/reload/blobs/{digest}").status_code == 200
    finally:
        tls.serve_certificate(tls.good_cert)


def test_a_certificate_that_cannot_be_loaded_keeps_the_previous_one(tls: TlsRegistry) -> None:
    before = tls.served_certificate().serial_number
    tls.paths.cert.write_bytes(b"not a certificate")
    try:
        os.kill(tls.server.pid, signal.SIGHUP)
        wait_until(lambda: "not reloaded" in tls.server.log_tail(), timeout=10)
        assert tls.served_certificate().serial_number == before
        assert tls.server.running
    finally:
        tls.serve_certificate(tls.good_cert)


def test_docker_pushes_and_pulls_over_https_trusting_the_ca_in_certs_d(
    tls: TlsRegistry, docker: DockerCli, tmp_path: Path
) -> None:
    """The engine runs on this machine, so its certs.d is this machine's: a directory named
    after this server's unique HOST:PORT, removed again."""
    tls.server.create_repository("tls/docker")
    trusted = Path("/etc/docker/certs.d") / tls.server.host
    trusted.mkdir(parents=True, exist_ok=False)
    remote = f"{tls.server.host}/tls/docker:v1"
    built = docker.build_busybox(tmp_path / "context")
    try:
        (trusted / "ca.crt").write_bytes(tls.paths.ca_cert.read_bytes())
        login = docker(
            "login",
            "--username",
            "AWS",
            "--password-stdin",
            tls.server.host,
            input=tls.server.login_password(),
        )
        assert "Login Succeeded" in login.stdout
        docker("tag", built, remote)
        pushed = docker("push", remote)
        assert "digest: sha256:" in pushed.stdout
        docker.remove_images(built, remote)
        pulled = docker("pull", remote)
        assert "Downloaded newer image" in pulled.stdout or "Status:" in pulled.stdout
        ran = docker("run", "--rm", "--network", "none", remote)
        assert "hello from busybox" in ran.stdout
    finally:
        docker.remove_images(built, remote)
        shutil.rmtree(trusted, ignore_errors=True)
    pushed_images = tls.server.ecr_client().describe_images(repositoryName="tls/docker")
    assert pushed_images["imageDetails"][0]["imageTags"] == ["v1"]
