from __future__ import annotations

from pathlib import Path

from cryptography import x509

from cargohold import awsprofile, tls_init
from cargohold.config import load


def test_the_certificate_names_the_public_host_loopback_and_account_hosts() -> None:
    config = load(environ={"CARGOHOLD_PUBLIC_URL": "https://registry.example:8443"})
    hosts = tls_init.server_hosts(config, ["123456789012", "210987654321"], ["extra.test"])
    assert hosts == [
        "registry.example",
        "127.0.0.1",
        "localhost",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        "210987654321.dkr.ecr.us-east-1.amazonaws.com",
        "extra.test",
    ]
    ca = tls_init.make_ca()
    cert, _key = tls_init.make_server_cert(*ca, hosts)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert "registry.example" in names.get_values_for_type(x509.DNSName)
    assert cert.issuer == ca[0].subject


def test_a_listening_address_for_every_interface_is_no_name() -> None:
    config = load(environ={"CARGOHOLD_HOST": "0.0.0.0"})
    assert tls_init.server_hosts(config, [], []) == ["127.0.0.1", "localhost"]


def test_the_ca_bundle_is_named_only_for_the_certificate_it_signed(tmp_path: Path) -> None:
    paths = tls_init.TlsPaths(tmp_path / "tls")
    ca = tls_init.make_ca()
    tls_init.write_server_files(paths, ca, tls_init.make_server_cert(*ca, ["localhost"]))
    ours = load(
        overrides={
            "data_dir": str(tmp_path),
            "tls_cert": str(paths.cert),
            "tls_key": str(paths.key),
        }
    )
    assert tls_init.ca_bundle(ours) == str(paths.ca_cert)
    theirs = load(overrides={"data_dir": str(tmp_path), "tls_cert": "/p.pem", "tls_key": "/k.pem"})
    assert tls_init.ca_bundle(theirs) is None
    assert tls_init.ca_bundle(load(overrides={"data_dir": str(tmp_path)})) is None


def test_the_profile_and_the_exports_name_the_ca_bundle(tmp_path: Path) -> None:
    credentials = awsprofile.AwsCredentials(
        "AKIA", "secret", "us-east-1", "https://h:1", ca_bundle="/ca.crt"
    )
    environ = {
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }
    awsprofile.write_profile(credentials, environ=environ)
    assert "ca_bundle = /ca.crt" in (tmp_path / "config").read_text()
    assert "export AWS_CA_BUNDLE=/ca.crt" in awsprofile.export_lines(credentials)
