"""`cargohold admin …` on a data directory, through `cargohold.cli.main` and as a subprocess."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import boto3
import psycopg
import pytest

from cargohold import admin
from cargohold.cli import main
from cargohold.config import Config, load
from cargohold.domain.principal import Principal
from cargohold.service.identity import Identities
from support.databases import POSTGRES_URL


@pytest.fixture(autouse=True)
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """AWS files in the test's directory, and an environment without AWS or cargohold settings."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "CARGOHOLD_")):
            monkeypatch.delenv(name)
    credentials, config = tmp_path / "aws" / "credentials", tmp_path / "aws" / "config"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return credentials, config


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def field(output: str, label: str) -> str:
    for line in output.splitlines():
        if line.startswith(label + ":"):
            return line.split(":", 1)[1].split()[0]
    raise AssertionError(f"no {label!r} in {output!r}")


def config_for(data_dir: str) -> Config:
    return load(overrides={"data_dir": data_dir}, environ={})


def authenticate(data_dir: str, password: str) -> Principal:
    async def check(identities: Identities) -> Principal:
        return await identities.authentication.authenticate_password(password)

    return admin.run(config_for(data_dir), check)


# -- init and the AWS profile --------------------------------------------------------------


def test_init_writes_a_profile_boto3_uses(
    capsys: pytest.CaptureFixture[str], data_dir: str, aws_files: tuple[Path, Path]
) -> None:
    code, out, _ = run(capsys, "admin", "init", "--data-dir", data_dir)
    assert code == 0
    key_id, secret = field(out, "access key"), field(out, "secret access key")
    assert key_id.startswith("AKIA") and len(secret) == 40
    credentials, config = aws_files
    assert str(credentials) in out and str(config) in out
    for path in aws_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    session = boto3.Session(profile_name="cargohold")
    frozen = session.get_credentials().get_frozen_credentials()  # type: ignore[union-attr]
    assert (frozen.access_key, frozen.secret_key) == (key_id, secret)
    assert session.region_name == "us-east-1"
    ecr = session.client("ecr")
    assert ecr.meta.endpoint_url == "http://127.0.0.1:5000"


def test_init_is_idempotent_unless_rotating(
    capsys: pytest.CaptureFixture[str], data_dir: str, aws_files: tuple[Path, Path]
) -> None:
    _, first, _ = run(capsys, "admin", "init", "--data-dir", data_dir)
    key_id = field(first, "access key")
    code, again, _ = run(capsys, "admin", "init", "--data-dir", data_dir)
    assert code == 0 and field(again, "access key") == key_id and "(kept)" in again
    assert "secret access key" not in again
    _, keys, _ = run(capsys, "admin", "access-key", "list", "admin", "--data-dir", data_dir)
    assert keys.count("AKIA") == 1

    _, rotated, _ = run(capsys, "admin", "init", "--rotate", "--data-dir", data_dir)
    new_id = field(rotated, "access key")
    assert new_id != key_id and "(created)" in rotated
    _, keys, _ = run(capsys, "admin", "access-key", "list", "--data-dir", data_dir)
    assert new_id in keys and key_id not in keys
    assert aws_files[0].read_text().count("aws_access_key_id") == 1
    assert new_id in aws_files[0].read_text()


def test_init_keeps_the_other_profiles(
    capsys: pytest.CaptureFixture[str], data_dir: str, aws_files: tuple[Path, Path]
) -> None:
    credentials, config = aws_files
    credentials.parent.mkdir()
    credentials.write_text(
        "# my keys\n[default]\naws_access_key_id = AKIADEFAULT\n\n"
        "[cargohold]\naws_access_key_id = OLD\naws_secret_access_key = OLD\n\n"
        "[work]\naws_access_key_id = AKIAWORK\n"
    )
    config.write_text("[default]\nregion = eu-west-1\n[profile work]\nregion = eu-central-1\n")
    # [cargohold] holds another registry's key: init says so and leaves it, unless forced.
    code, _, err = run(capsys, "admin", "init", "--data-dir", data_dir)
    assert code == 1 and "[cargohold]" in err and "belongs to another registry" in err
    assert "OLD" in credentials.read_text()
    assert run(capsys, "admin", "init", "--force", "--data-dir", data_dir)[0] == 0
    text = credentials.read_text()
    assert "# my keys" in text and "AKIADEFAULT" in text and "AKIAWORK" in text
    assert "OLD" not in text
    assert "region = eu-west-1" in config.read_text()
    assert boto3.Session(profile_name="work").region_name == "eu-central-1"
    assert boto3.Session(profile_name="cargohold").region_name == "us-east-1"
    assert boto3.Session().region_name == "eu-west-1"


def test_init_options(
    capsys: pytest.CaptureFixture[str],
    data_dir: str,
    aws_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    toml = tmp_path / "cargohold.toml"
    toml.write_text(
        'account_id = "111122223333"\nregion = "eu-west-3"\n'
        'public_url = "https://registry.example.com/"\n'
    )
    code, out, _ = run(
        capsys, "admin", "init", "--profile", "reg", "--config", str(toml), "--data-dir", data_dir
    )
    assert code == 0 and "arn:aws:iam::111122223333:user/admin" in out
    session = boto3.Session(profile_name="reg")
    assert session.region_name == "eu-west-3"
    assert session.client("ecr").meta.endpoint_url == "https://registry.example.com"

    other = str(tmp_path / "other")
    code, out, _ = run(capsys, "admin", "init", "--no-profile", "--data-dir", other)
    assert code == 0 and "profile" not in out.split("for scripts")[0]
    assert "[cargohold]" not in aws_files[0].read_text()

    with pytest.raises(SystemExit) as exit_info:
        main(["admin", "init", "--profile", "bad name", "--data-dir", other])
    assert exit_info.value.code == 2
    assert "invalid profile name" in capsys.readouterr().err


def test_first_start_saves_the_profile_once_and_prints_no_secret(
    capsys: pytest.CaptureFixture[str], data_dir: str, aws_files: tuple[Path, Path]
) -> None:
    config = config_for(data_dir)
    admin.first_start(config)
    out = capsys.readouterr().out
    assert "created the administrator's access key" in out and str(aws_files[0]) in out
    secret = admin.administrator_credentials(config).secret_access_key
    assert secret not in out
    assert secret in aws_files[0].read_text()
    before = [path.read_text() for path in aws_files]
    # A profile removed since is saved again, with the same key; nothing is created.
    for path in aws_files:
        path.unlink()
    admin.first_start(config)
    out = capsys.readouterr().out
    assert "created" not in out and "saved the administrator's access key" in out
    assert secret not in out
    assert [path.read_text() for path in aws_files] == before
    assert run(capsys, "admin", "init", "--data-dir", data_dir)[0] == 0
    assert [path.read_text() for path in aws_files] == before


def test_a_later_start_points_its_own_profile_at_the_url_it_serves(
    capsys: pytest.CaptureFixture[str], data_dir: str, aws_files: tuple[Path, Path]
) -> None:
    admin.first_start(config_for(data_dir))
    assert "endpoint_url = http://127.0.0.1:5000" in aws_files[1].read_text()
    capsys.readouterr()
    moved = load(overrides={"data_dir": data_dir, "port": 5401}, environ={})
    admin.first_start(moved)
    out = capsys.readouterr().out
    assert "[cargohold]" in out and "points at http://127.0.0.1:5401" in out
    text = aws_files[1].read_text()
    assert text.count("endpoint_url = http://127.0.0.1:5401") == 3 and ":5000" not in text
    assert boto3.Session(profile_name="cargohold").client("ecr").meta.endpoint_url == (
        "http://127.0.0.1:5401"
    )
    # Unchanged: nothing is written, nothing said about it.
    admin.first_start(moved)
    assert "points at" not in capsys.readouterr().out


def test_a_start_never_takes_over_another_registrys_profile(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, aws_files: tuple[Path, Path]
) -> None:
    first = load(overrides={"data_dir": str(tmp_path / "one"), "port": 5401}, environ={})
    admin.first_start(first)
    capsys.readouterr()
    before = [path.read_bytes() for path in aws_files]
    second = load(overrides={"data_dir": str(tmp_path / "two"), "port": 5402}, environ={})
    admin.first_start(second)
    out = capsys.readouterr().out
    assert "[cargohold]" in out and "belongs to another registry" in out
    assert "aws_profile" in out and "--profile cargohold" not in out
    assert [path.read_bytes() for path in aws_files] == before
    # Under a name of its own (aws_profile), the second registry gets its profile.
    named = load(
        overrides={"data_dir": str(tmp_path / "two"), "port": 5402, "aws_profile": "two"},
        environ={},
    )
    admin.first_start(named)
    assert "aws --profile two ecr" in capsys.readouterr().out
    assert boto3.Session(profile_name="two").client("ecr").meta.endpoint_url == (
        "http://127.0.0.1:5402"
    )
    assert boto3.Session(profile_name="cargohold").client("ecr").meta.endpoint_url == (
        "http://127.0.0.1:5401"
    )


def test_without_a_profile_the_banner_names_none(
    capsys: pytest.CaptureFixture[str], data_dir: str, aws_files: tuple[Path, Path], tmp_path: Path
) -> None:
    admin.first_start(config_for(data_dir), aws_profile=False, config_file=str(tmp_path / "c.toml"))
    out = capsys.readouterr().out
    assert "--profile" not in out and "AWS profile" not in out
    assert f"admin credentials --data-dir {Path(data_dir).resolve()} --config" in out
    assert not aws_files[0].exists() and not aws_files[1].exists()


# -- credentials, login-password -----------------------------------------------------------


def initialized(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    assert run(capsys, "admin", "init", "--no-profile", "--data-dir", data_dir)[0] == 0


def test_credentials_export_lines(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    initialized(capsys, data_dir)
    code, out, _ = run(capsys, "admin", "credentials", "--data-dir", data_dir)
    assert code == 0
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )
    assert exports["AWS_ACCESS_KEY_ID"].startswith("AKIA")
    assert exports["AWS_DEFAULT_REGION"] == "us-east-1"
    assert exports["AWS_ENDPOINT_URL_ECR"] == "http://127.0.0.1:5000"
    # The same key every time, and the one init reports.
    assert run(capsys, "admin", "credentials", "--data-dir", data_dir)[1] == out
    _, init_out, _ = run(capsys, "admin", "init", "--data-dir", data_dir)
    assert field(init_out, "access key") == exports["AWS_ACCESS_KEY_ID"]


def test_eval_credentials_in_bash(
    capsys: pytest.CaptureFixture[str], data_dir: str, tmp_path: Path
) -> None:
    initialized(capsys, data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOHOLD_")}
    env["AWS_SESSION_TOKEN"] = "stale"
    script = (
        f'eval "$({sys.executable} -m cargohold admin credentials --data-dir {data_dir})" && '
        'echo "$AWS_ACCESS_KEY_ID|$AWS_SECRET_ACCESS_KEY|$AWS_DEFAULT_REGION|'
        '$AWS_ENDPOINT_URL_ECR|${AWS_SESSION_TOKEN-unset}"'
    )
    result = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    key_id, secret, region, endpoint, session = result.stdout.strip().split("|")
    expected = admin.administrator_credentials(config_for(data_dir))
    assert (key_id, secret) == (expected.access_key_id, expected.secret_access_key)
    assert (region, endpoint, session) == ("us-east-1", "http://127.0.0.1:5000", "unset")


def test_login_password(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    initialized(capsys, data_dir)
    code, out, _ = run(capsys, "admin", "login-password", "--data-dir", data_dir)
    assert code == 0
    password = out.strip()
    principal = authenticate(data_dir, password)
    assert principal.arn == "arn:aws:iam::123456789012:user/admin"
    assert admin.login_password(config_for(data_dir)) != ""


# -- accounts ---------------------------------------------------------------------------------


def test_accounts(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    run(capsys, "admin", "init", "--no-profile", "--data-dir", data_dir)
    code, out, _ = run(capsys, "admin", "account", "create", "210987654321", "--data-dir", data_dir)
    assert code == 0
    assert field(out, "administrator") == "arn:aws:iam::210987654321:user/admin"
    key = field(out, "access key")
    assert "(created)" in out and field(out, "secret access key")
    # Idempotent: the account keeps its administrator's key, and its secret is not shown again.
    code, again, _ = run(
        capsys, "admin", "account", "create", "210987654321", "--data-dir", data_dir
    )
    assert code == 0 and field(again, "access key") == key and "secret" not in again
    code, out, _ = run(capsys, "admin", "account", "list", "--data-dir", data_dir)
    assert [line.split()[0] for line in out.splitlines()] == [
        "ACCOUNT",
        "123456789012",
        "210987654321",
    ]
    code, out, _ = run(
        capsys, "admin", "credentials", "--account", "210987654321", "--data-dir", data_dir
    )
    assert f"export AWS_ACCESS_KEY_ID={key}" in out.splitlines()
    code, out, _ = run(
        capsys, "admin", "login-password", "--account", "210987654321", "--data-dir", data_dir
    )
    assert authenticate(data_dir, out.strip()).arn == "arn:aws:iam::210987654321:user/admin"
    code, _, err = run(capsys, "admin", "account", "create", "12345", "--data-dir", data_dir)
    assert code == 1 and "twelve digits" in err


# -- users and access keys -----------------------------------------------------------------


def test_users(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    initialized(capsys, data_dir)
    code, out, _ = run(capsys, "admin", "user", "create", "alice", "--data-dir", data_dir)
    assert code == 0 and "arn:aws:iam::123456789012:user/alice" in out
    code, _, err = run(capsys, "admin", "user", "create", "alice", "--data-dir", data_dir)
    assert code == 1 and "already exists" in err
    # Options also go before the verb.
    code, out, _ = run(capsys, "admin", "--data-dir", data_dir, "user", "list")
    assert code == 0 and "alice" in out and out.startswith("NAME")
    assert run(capsys, "admin", "user", "delete", "alice", "--data-dir", data_dir)[0] == 0
    code, _, err = run(capsys, "admin", "user", "delete", "alice", "--data-dir", data_dir)
    assert code == 1 and "cannot be found" in err
    assert "alice" not in run(capsys, "admin", "user", "list", "--data-dir", data_dir)[1]


def test_access_keys(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    initialized(capsys, data_dir)
    run(capsys, "admin", "user", "create", "bob", "--data-dir", data_dir)
    code, out, _ = run(capsys, "admin", "access-key", "create", "bob", "--data-dir", data_dir)
    assert code == 0
    key_id, secret = field(out, "access key id"), field(out, "secret access key")

    def listing(*user: str) -> str:
        return run(capsys, "admin", "access-key", "list", *user, "--data-dir", data_dir)[1]

    assert key_id in listing("bob") and "Active" in listing("bob")
    assert secret not in listing()

    code, out, _ = run(capsys, "admin", "access-key", "deactivate", key_id, "--data-dir", data_dir)
    assert code == 0 and "Inactive" in out
    assert "Inactive" in listing("bob")
    code, out, _ = run(capsys, "admin", "access-key", "activate", key_id, "--data-dir", data_dir)
    assert code == 0 and "Active" in out

    code, _, err = run(capsys, "admin", "user", "delete", "bob", "--data-dir", data_dir)
    assert code == 1 and "delete access keys first" in err
    assert run(capsys, "admin", "access-key", "delete", key_id, "--data-dir", data_dir)[0] == 0
    assert key_id not in listing()
    code, _, err = run(capsys, "admin", "access-key", "delete", key_id, "--data-dir", data_dir)
    assert code == 1 and "cannot be found" in err
    code, _, err = run(capsys, "admin", "access-key", "create", "nobody", "--data-dir", data_dir)
    assert code == 1 and "cannot be found" in err

    run(capsys, "admin", "access-key", "create", "bob", "--data-dir", data_dir)
    code, out, _ = run(capsys, "admin", "user", "delete", "bob", "--force", "--data-dir", data_dir)
    assert code == 0 and "AKIA" in out


def test_a_deactivated_key_no_longer_resolves(
    capsys: pytest.CaptureFixture[str], data_dir: str
) -> None:
    initialized(capsys, data_dir)
    _, out, _ = run(capsys, "admin", "login-password", "--data-dir", data_dir)
    password = out.strip()
    _, out, _ = run(capsys, "admin", "credentials", "--data-dir", data_dir)
    key_id = next(
        line.split("=", 1)[1] for line in out.splitlines() if "AWS_ACCESS_KEY_ID=" in line
    )
    run(capsys, "admin", "access-key", "deactivate", key_id, "--data-dir", data_dir)
    with pytest.raises(Exception, match="invalid"):
        authenticate(data_dir, password)

    async def lookup(identities: Identities) -> str | None:
        return await identities.authentication.lookup_secret(key_id)

    assert admin.run(config_for(data_dir), lookup) is None


def test_secrets_are_not_in_the_database_file(
    capsys: pytest.CaptureFixture[str], data_dir: str
) -> None:
    _, out, _ = run(capsys, "admin", "init", "--no-profile", "--data-dir", data_dir)
    admin_key, admin_secret = field(out, "access key"), field(out, "secret access key")
    run(capsys, "admin", "user", "create", "bob", "--data-dir", data_dir)
    _, out, _ = run(capsys, "admin", "access-key", "create", "bob", "--data-dir", data_dir)
    key_id, secret = field(out, "access key id"), field(out, "secret access key")
    files = [p for p in Path(data_dir).iterdir() if p.name.startswith("metadata.db")]
    raw = b"".join(p.read_bytes() for p in files)  # the database and any WAL
    assert admin_key.encode() in raw and key_id.encode() in raw
    assert admin_secret.encode() not in raw and secret.encode() not in raw
    master = Path(data_dir) / "master.key"
    assert stat.S_IMODE(master.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "argv",
    [[], ["admin"], ["admin", "account"], ["admin", "repository-policy"], ["vulndb"], ["sbom"]],
    ids=lambda argv: " ".join(argv) or "cargohold",
)
def test_a_group_without_a_command_lists_its_commands(
    capsys: pytest.CaptureFixture[str], data_dir: str, argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert "commands:" in err and "required" not in err
    assert not Path(data_dir).exists()


def test_bad_config_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('acount_id = "1"\n')
    code, _, err = run(capsys, "admin", "user", "list", "--config", str(toml))
    assert code == 2 and "unknown key" in err


def test_service_runs_inside_an_event_loop_only_async() -> None:
    # `admin.run` owns its event loop; in async code use the services directly.
    async def inside() -> None:
        with pytest.raises(RuntimeError):
            admin.run(config_for("unused"), lambda identities: identities.admin.list_users())

    anyio.run(inside)


# -- only init, account create and serve create anything -------------------------------------

NEVER_CREATE = [
    ["admin", "credentials"],
    ["admin", "login-password"],
    ["admin", "credentials", "--account", "555555555555"],
    ["admin", "account", "list"],
    ["admin", "account", "delete", "210987654321"],
    ["admin", "user", "list"],
    ["admin", "user", "create", "alice"],
    ["admin", "access-key", "list"],
    ["admin", "repository-policy", "delete", "app"],
    ["admin", "registry-policy", "delete"],
    ["audit"],
    ["sbom", "export", "app", "1.0"],
]


@pytest.mark.parametrize("argv", NEVER_CREATE, ids=" ".join)
def test_commands_on_a_missing_data_dir_create_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    data_dir = tmp_path / "nowhere"
    code, out, err = run(capsys, *argv, "--data-dir", str(data_dir))
    assert code == 1 and out == ""
    assert f"there is no data directory {data_dir}" in err
    assert "`cargohold serve` or `cargohold admin init` creates it" in err
    assert not data_dir.exists()


@pytest.mark.parametrize("argv", NEVER_CREATE, ids=" ".join)
def test_commands_on_a_directory_without_a_registry_create_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    data_dir = tmp_path / "empty"
    data_dir.mkdir()
    code, out, err = run(capsys, *argv, "--data-dir", str(data_dir))
    assert code == 1 and out == ""
    assert "creates it" in err
    assert list(data_dir.iterdir()) == []


def test_a_database_url_without_a_database_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, postgres_url: str
) -> None:
    """Against an empty PostgreSQL schema, the commands create no tables (and no metadata.db
    in the data directory)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "master.key").write_bytes(b"")
    toml = tmp_path / "cargohold.toml"
    toml.write_text(f'database_url = "{postgres_url}"\n')
    code, _, err = run(
        capsys, "admin", "user", "list", "--config", str(toml), "--data-dir", str(data_dir)
    )
    assert code == 1 and "no cargohold metadata database in the database of database_url" in err
    assert sorted(p.name for p in data_dir.iterdir()) == ["master.key"]

    schema = postgres_url.rsplit("search_path%3D", 1)[1]
    with psycopg.connect(POSTGRES_URL) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
    assert tables == (0,)


def test_an_account_that_does_not_exist_is_not_created(
    capsys: pytest.CaptureFixture[str], data_dir: str
) -> None:
    initialized(capsys, data_dir)
    for argv in (
        ["admin", "credentials", "--account", "555555555555"],
        ["admin", "login-password", "--account", "555555555555"],
    ):
        code, out, err = run(capsys, *argv, "--data-dir", data_dir)
        assert code == 1 and out == ""
        assert "the account 555555555555 does not exist" in err
        assert "admin account create 555555555555" in err
    _, accounts, _ = run(capsys, "admin", "account", "list", "--data-dir", data_dir)
    assert "555555555555" not in accounts


def test_account_delete(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    initialized(capsys, data_dir)
    run(capsys, "admin", "account", "create", "210987654321", "--data-dir", data_dir)
    password = admin.login_password(config_for(data_dir), account="210987654321", create=False)
    assert authenticate(data_dir, password).account_id == "210987654321"

    code, out, _ = run(capsys, "admin", "account", "delete", "210987654321", "--data-dir", data_dir)
    assert code == 0 and "deleted account 210987654321" in out
    _, accounts, _ = run(capsys, "admin", "account", "list", "--data-dir", data_dir)
    assert "210987654321" not in accounts
    with pytest.raises(Exception, match="invalid"):
        authenticate(data_dir, password)  # its keys went with it
    code, _, err = run(capsys, "admin", "account", "delete", "210987654321", "--data-dir", data_dir)
    assert code == 1 and "does not exist" in err
    code, _, err = run(capsys, "admin", "account", "delete", "123456789012", "--data-dir", data_dir)
    assert code == 1 and "cannot be deleted" in err
    code, _, err = run(capsys, "admin", "account", "delete", "12345", "--data-dir", data_dir)
    assert code == 1 and "twelve digits" in err


def test_secrets_say_whether_they_are_shown_again(
    capsys: pytest.CaptureFixture[str], data_dir: str
) -> None:
    _, out, _ = run(capsys, "admin", "init", "--no-profile", "--data-dir", data_dir)
    secret = field(out, "secret access key")
    assert "(`cargohold admin credentials` shows it again)" in out and "shown once" not in out
    assert secret in run(capsys, "admin", "credentials", "--data-dir", data_dir)[1]
    _, out, _ = run(capsys, "admin", "account", "create", "210987654321", "--data-dir", data_dir)
    secret = field(out, "secret access key")
    assert "--account 210987654321` shows it again" in out and "shown once" not in out
    shown = run(capsys, "admin", "credentials", "--account", "210987654321", "--data-dir", data_dir)
    assert secret in shown[1]
    run(capsys, "admin", "user", "create", "bob", "--data-dir", data_dir)
    _, out, _ = run(capsys, "admin", "access-key", "create", "bob", "--data-dir", data_dir)
    assert "(shown once)" in out


# -- help -----------------------------------------------------------------------------------


def _parsers(
    parser: argparse.ArgumentParser, path: str = "cargohold"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_command_and_option_has_help_with_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> object:
        built.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(SystemExit):
        main([])
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", original)
    missing: list[str] = []
    for path, parser in _parsers(built[0]):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    if not choice.help:
                        missing.append(f"{path} {choice.dest}: no description")
                continue
            name = "/".join(action.option_strings) or action.dest
            if not action.help:
                missing.append(f"{path} {name}: no help")
            elif action.option_strings and "default" not in action.help:
                missing.append(f"{path} {name}: no default in {action.help!r}")
    assert not missing, "\n".join(missing)


def test_init_without_a_running_server_keeps_its_profiles_endpoint(
    capsys: pytest.CaptureFixture[str], data_dir: str, aws_files: tuple[Path, Path]
) -> None:
    # A server on 5401 wrote the profile, and has stopped since (no record).
    admin.first_start(load(overrides={"data_dir": data_dir, "port": 5401}, environ={}))
    capsys.readouterr()
    code, out, err = run(capsys, "admin", "init", "--data-dir", data_dir)
    assert code == 0 and "endpoint: http://127.0.0.1:5401" in out
    assert "keeping the endpoint http://127.0.0.1:5401 of profile [cargohold]" in err
    assert aws_files[1].read_text().count("endpoint_url = http://127.0.0.1:5401") == 3
    assert ":5000" not in aws_files[1].read_text()


def test_init_writes_the_configured_profile_name(
    capsys: pytest.CaptureFixture[str], data_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARGOHOLD_AWS_PROFILE", "second-registry")
    code, out, _ = run(capsys, "admin", "init", "--data-dir", data_dir)
    assert code == 0 and "AWS profile [second-registry] written" in out
    assert boto3.Session(profile_name="second-registry").region_name == "us-east-1"
    code, _, err = run(capsys, "admin", "init", "--data-dir", data_dir)
    assert code == 0
    monkeypatch.setenv("CARGOHOLD_AWS_PROFILE", "not a name")
    code, _, err = run(capsys, "admin", "init", "--data-dir", data_dir)
    assert code == 2 and "aws_profile 'not a name' is not a profile name" in err
