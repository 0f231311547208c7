"""`cargohold admin tls init`: a local certificate authority and a server certificate it signs.

Files go to `<data_dir>/tls/`: `ca.crt` and `ca.key` (kept when they exist, so clients that
trust the CA keep trusting it when the server certificate is made again), `server.crt` (the
server certificate followed by the CA's) and `server.key`. Keys are readable by their owner only.

The server certificate names every host the registry answers to: the configured public host (or
listening address), 127.0.0.1, localhost, the `<account>.dkr.ecr.<region>.amazonaws.com` name of
each account the server holds, and every `--host`.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cargohold import awsprofile
from cargohold.config import Config
from cargohold.privatefiles import create_private_file, make_private_dirs

#: Server certificates live no longer than browsers and Apple clients accept (398 days).
SERVER_DAYS = 397
CA_DAYS = 3650
#: Listening addresses that are no host a client can name.
_ANY_ADDRESS = ("0.0.0.0", "::")  # noqa: S104


@dataclass(frozen=True, slots=True)
class TlsPaths:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def key(self) -> Path:
        return self.directory / "server.key"


def tls_paths(config: Config) -> TlsPaths:
    return TlsPaths(config.data_path / "tls")


def ca_bundle(config: Config) -> str | None:
    """The CA file clients need to trust this server: the local CA when the server uses the
    certificate `admin tls init` made, else None (a certificate from a public CA needs none)."""
    paths = tls_paths(config)
    if config.tls_cert is None or not paths.ca_cert.exists():
        return None
    if Path(config.tls_cert).resolve() != paths.cert.resolve():
        return None
    return str(paths.ca_cert)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(
    name: str = "cargohold local CA", *, days: int = CA_DAYS
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_server_cert(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[str],
    *,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for `hosts` (names and IP addresses), signed by the CA, for `key`
    (a new one when None)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after or now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _write(path: Path, data: bytes, *, private: bool) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.unlink(missing_ok=True)
    with os.fdopen(create_private_file(staging), "wb") if private else staging.open("wb") as handle:
        handle.write(data)
    os.replace(staging, path)


def write_server_files(
    paths: TlsPaths,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    server: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    make_private_dirs(paths.directory)
    pem = serialization.Encoding.PEM
    _write(paths.ca_cert, ca[0].public_bytes(pem), private=False)
    _write(paths.ca_key, _key_pem(ca[1]), private=True)
    _write(paths.key, _key_pem(server[1]), private=True)
    _write(paths.cert, server[0].public_bytes(pem) + ca[0].public_bytes(pem), private=False)


def _load_ca(paths: TlsPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    if not (paths.ca_cert.exists() and paths.ca_key.exists()):
        return None
    cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{paths.ca_key} is not the elliptic-curve key this command makes")
    return cert, key


def public_host(config: Config) -> str:
    if config.public_url:
        return urlsplit(config.public_url).hostname or config.host
    return config.host


def server_hosts(config: Config, accounts: Iterable[str], extra: Iterable[str]) -> list[str]:
    names = [public_host(config), "127.0.0.1", "localhost"]
    names += [f"{account}.dkr.ecr.{config.region}.amazonaws.com" for account in accounts]
    names += list(extra)
    unique: list[str] = []
    for name in names:
        if name not in unique and name not in _ANY_ADDRESS:
            unique.append(name)
    return unique


def https_endpoint(config: Config) -> str:
    if config.public_url:
        parts = urlsplit(config.public_url)
        return parts._replace(scheme="https").geturl().rstrip("/")
    return f"https://{config.host}:{config.port}"


def trust_instructions(config: Config, paths: TlsPaths, hosts: Sequence[str]) -> list[str]:
    endpoint = urlsplit(https_endpoint(config))
    port = endpoint.port
    lines = [
        "To serve HTTPS, add to the configuration file:",
        f'  tls_cert = "{paths.cert}"',
        f'  tls_key = "{paths.key}"',
        "(or set CARGOHOLD_TLS_CERT and CARGOHOLD_TLS_KEY), then restart `cargohold serve`",
        "(a running server reloads the files on SIGHUP).",
        "",
        "Trust the CA on each client machine, for each HOST it uses"
        f" ({', '.join(hosts)}){'' if port in (None, 443) else f', with the port: HOST:{port}'}:",
        "  docker:          sudo install -D -m 0644 "
        f"{paths.ca_cert} /etc/docker/certs.d/HOST/ca.crt",
        "  podman, skopeo:  sudo install -D -m 0644 "
        f"{paths.ca_cert} /etc/containers/certs.d/HOST/ca.crt",
        f"  aws CLI, boto3:  export AWS_CA_BUNDLE={paths.ca_cert}"
        "  (the AWS profile written names it as ca_bundle)",
    ]
    return lines


def init(
    config: Config,
    extra_hosts: Sequence[str],
    accounts: Sequence[str],
    write_profile: Callable[[str, str], awsprofile.ProfileFiles | None],
) -> list[str]:
    """Make (or keep) the CA, make the server certificate; the lines to print."""
    paths = tls_paths(config)
    ca = _load_ca(paths)
    kept = ca is not None
    if ca is None:
        ca = make_ca()
    hosts = server_hosts(config, accounts, extra_hosts)
    server = make_server_cert(ca[0], ca[1], hosts)
    write_server_files(paths, ca, server)
    lines = [
        f"CA: {paths.ca_cert} ({'kept' if kept else 'created'})",
        f"server certificate: {paths.cert} for {', '.join(hosts)}",
        f"server key: {paths.key}",
    ]
    files = write_profile(https_endpoint(config), str(paths.ca_cert))
    if files is not None:
        lines.append(
            f"AWS profile written to {files.credentials} and {files.config}, "
            f"endpoint {https_endpoint(config)}, ca_bundle {paths.ca_cert}"
        )
    else:
        lines.append(
            "the AWS profile `serve` writes (or `cargohold admin init` with tls_cert and "
            f"tls_key configured) names {paths.ca_cert} as its ca_bundle"
        )
    return [*lines, "", *trust_instructions(config, paths, hosts)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name or address the certificate names (repeatable; default: none)",
    )
