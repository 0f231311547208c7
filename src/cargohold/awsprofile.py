"""The AWS side of the administrator's credentials: a named profile in the shared credentials
and config files, and shell `export` lines, so `aws --profile cargohold ecr …`, boto3 and
`eval "$(cargohold admin credentials)"` reach this registry with no further setup.

The files are edited section by section: every other profile, comment and line is kept as it
was. `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` choose the files, as for the AWS tools.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PROFILE = "cargohold"

#: The key of a profile's config section naming the data directory of the registry that wrote
#: it (the AWS tools ignore keys they do not know).
DATA_DIR_KEY = "cargohold_data_dir"

#: The AWS services whose endpoint is this registry; the profile's `services` section and
#: `AWS_ENDPOINT_URL_<SERVICE>` both follow.
ENDPOINT_SERVICES: tuple[str, ...] = ("ecr", "sts", "iam")

_SECTION = re.compile(r"^\s*\[\s*([^\]]*?)\s*\]\s*(?:[#;].*)?$")


@dataclass(frozen=True, slots=True)
class ProfileFiles:
    credentials: Path
    config: Path


@dataclass(frozen=True, slots=True)
class SavedProfile:
    """What a profile of the AWS files holds, as far as cargohold is concerned: its key id,
    region, ECR endpoint and the data directory of the registry that wrote it (None when
    absent)."""

    name: str
    access_key_id: str | None
    region: str | None
    endpoint_url: str | None
    data_dir: str | None


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    region: str
    endpoint_url: str
    #: The data directory of the registry the credentials belong to, recorded in the profile
    #: so that a later start knows the profile as its own.
    data_dir: str | None = None
    #: The CA certificate(s) to trust for the endpoint, when it is not trusted by default.
    ca_bundle: str | None = None

    def __repr__(self) -> str:
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, secret_access_key=<hidden>)"


def profile_files(environ: Mapping[str, str] | None = None) -> ProfileFiles:
    """The shared credentials and config files the AWS CLI and boto3 read."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("HOME") or Path.home())
    credentials = environ.get("AWS_SHARED_CREDENTIALS_FILE") or str(home / ".aws" / "credentials")
    config = environ.get("AWS_CONFIG_FILE") or str(home / ".aws" / "config")
    return ProfileFiles(Path(credentials).expanduser(), Path(config).expanduser())


def is_profile_name(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9_.+-]{1,64}", name) is not None


def write_profile(
    credentials: AwsCredentials,
    *,
    profile: str = DEFAULT_PROFILE,
    environ: Mapping[str, str] | None = None,
) -> ProfileFiles:
    """Write `[profile]` to the credentials file and `[profile profile]` (region, endpoints)
    to the config file, replacing earlier versions of those sections only."""
    if not is_profile_name(profile):
        raise ValueError(f"invalid profile name {profile!r}")
    files = profile_files(environ)
    _edit(
        files.credentials,
        {
            profile: [
                f"aws_access_key_id = {credentials.access_key_id}",
                f"aws_secret_access_key = {credentials.secret_access_key}",
            ]
        },
    )
    services_name = profile
    services_lines = []
    for service in ENDPOINT_SERVICES:
        services_lines += [f"{service} =", f"  endpoint_url = {credentials.endpoint_url}"]
    _edit(
        files.config,
        {
            f"profile {profile}": [
                f"region = {credentials.region}",
                "output = json",
                f"services = {services_name}",
                *(
                    [f"{DATA_DIR_KEY} = {credentials.data_dir}"]
                    if credentials.data_dir is not None
                    else []
                ),
                *([f"ca_bundle = {credentials.ca_bundle}"] if credentials.ca_bundle else []),
            ],
            f"services {services_name}": services_lines,
        },
    )
    return files


def read_profile(
    profile: str = DEFAULT_PROFILE, *, environ: Mapping[str, str] | None = None
) -> SavedProfile | None:
    """The profile `profile` as the AWS files hold it, or None when neither file has it."""
    files = profile_files(environ)
    credentials = _section(files.credentials, profile)
    config = _section(files.config, f"profile {profile}")
    if credentials is None and config is None:
        return None
    credentials, config = credentials or {}, config or {}
    services = _section(files.config, f"services {config.get('services', profile)}") or {}
    return SavedProfile(
        name=profile,
        access_key_id=credentials.get("aws_access_key_id"),
        region=config.get("region"),
        endpoint_url=services.get("ecr.endpoint_url") or config.get("endpoint_url"),
        data_dir=config.get(DATA_DIR_KEY),
    )


def _section(path: Path, name: str) -> dict[str, str] | None:
    """The `key = value` lines of section `[name]` (nested `service =` blocks as
    `service.key`), or None when the file or the section is missing."""
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    values: dict[str, str] | None = None
    inside = False
    block = ""
    for line in lines:
        match = _SECTION.match(line)
        if match is not None:
            inside = " ".join(match.group(1).split()) == name
            if inside and values is None:
                values = {}
            continue
        if not inside or values is None or not line.strip() or line.lstrip()[0] in "#;":
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if line[0].isspace() and block:
            values[f"{block}.{key}"] = value
        elif value:
            values[key], block = value, ""
        else:
            block = key
    return values


def export_lines(credentials: AwsCredentials) -> list[str]:
    """Shell lines that put the credentials in the environment: `eval "$(…)"` in sh or bash."""
    variables = {
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
        "AWS_DEFAULT_REGION": credentials.region,
        "AWS_REGION": credentials.region,
    }
    for service in ENDPOINT_SERVICES:
        variables[f"AWS_ENDPOINT_URL_{service.upper()}"] = credentials.endpoint_url
    if credentials.ca_bundle:
        variables["AWS_CA_BUNDLE"] = credentials.ca_bundle
    lines = [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
    # A session token left over in the environment would be sent with, and spoil, every request.
    lines.append("unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN")
    return lines


def _edit(path: Path, sections: Mapping[str, Sequence[str]]) -> None:
    """Replace (or append) each named section's body; keep everything else byte for byte."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    lines = text.splitlines()
    out: list[str] = []
    done: set[str] = set()
    skipping = False
    for line in lines:
        match = _SECTION.match(line)
        if match is not None:
            name = " ".join(match.group(1).split())
            skipping = name in sections
            if skipping and name not in done:
                out += [f"[{name}]", *sections[name], ""]
                done.add(name)
        if not skipping:
            out.append(line)
    for name, body in sections.items():
        if name not in done:
            if out and out[-1].strip():
                out.append("")
            out += [f"[{name}]", *body, ""]
    while out and not out[-1].strip():
        out.pop()
    _write_private(path, "\n".join(out) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Atomically replace `path` with `text`, readable by its owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
