"""`cargohold admin …`: accounts and credentials, straight on the metadata database.

The commands need no running server: they migrate the database if needed and open the same
store and master key the server uses. Secrets are printed to standard output only when the
command exists to show them (`access-key create`, `init` when it creates the key,
`credentials`); nothing here logs them.

For tests and scripts, `administrator_credentials(config)` and `login_password(config)` are the
same answers as `cargohold admin credentials` and `cargohold admin login-password`.
"""

from __future__ import annotations

import argparse
import re
import shlex
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import anyio

from cargohold import awsprofile, datastate, serving, tls_init
from cargohold.auth.errors import SecretBoxError
from cargohold.auth.secretbox import SecretBox
from cargohold.config import Config
from cargohold.domain.errors import RegistryError
from cargohold.domain.identity import IdentityError
from cargohold.metadata.store import MetadataStore
from cargohold.service.credentials import AdministratorKey
from cargohold.service.identity import Identities
from cargohold.service.policies import PolicyService

ACCOUNT_ID = re.compile(r"\d{12}", re.ASCII)

T = TypeVar("T")

DEFAULT_PROFILE = awsprofile.DEFAULT_PROFILE

Loader = Callable[[argparse.Namespace], Config]


class AdminError(Exception):
    """A command that cannot be carried out; its message is for the terminal."""


# -- running operations on a data directory ---------------------------------------------------


async def _with_store(
    config: Config, operation: Callable[[MetadataStore], Awaitable[T]], *, create: bool = False
) -> T:
    """Run `operation` on the config's store. Unless `create`, the data directory and the
    database must exist already (`MissingState` otherwise): nothing is created by accident."""
    from cargohold.app import opened_store  # the composition root; it brings the HTTP fronts

    if not create:
        await anyio.to_thread.run_sync(datastate.require_existing, config)
    async with opened_store(config) as store:
        return await operation(store)


async def _with_identities(
    config: Config,
    operation: Callable[[Identities], Awaitable[T]],
    account: str | None,
    create: bool,
) -> T:
    async def on(store: MetadataStore) -> T:
        identities = Identities.sealed_by(
            store,
            SecretBox.for_node(config.master_key_path, provisioned=bool(config.master_key_file)),
            time.time,
            account_id=account or config.account_id,
            region=config.region,
        )
        if not create and not await identities.admin.account_exists():
            raise AdminError(
                f"the account {identities.admin.account_id} does not exist on this server "
                f"(`cargohold admin account create {identities.admin.account_id}` creates it; "
                "`cargohold admin account list` lists them)"
            )
        return await operation(identities)

    return await _with_store(config, on, create=create)


def run(
    config: Config,
    operation: Callable[[Identities], Awaitable[T]],
    *,
    account: str | None = None,
    create: bool = False,
) -> T:
    """Run one identity operation on the config's database, in `account` (the configured
    account when None); errors become AdminError. Unless `create`, the data directory, the
    database and the account must exist."""
    if account is not None and not ACCOUNT_ID.fullmatch(account):
        raise AdminError(f"an account id is twelve digits, not {account!r}")
    try:
        return anyio.run(_with_identities, config, operation, account, create)
    except (IdentityError, SecretBoxError, datastate.MissingState) as exc:
        raise AdminError(str(exc)) from None


def run_on_store(
    config: Config, operation: Callable[[MetadataStore], Awaitable[T]], *, create: bool = False
) -> T:
    """Run `operation` on the config's store; errors become AdminError."""
    try:
        return anyio.run(partial(_with_store, config, operation, create=create))
    except (RegistryError, datastate.MissingState) as exc:
        raise AdminError(getattr(exc, "message", None) or str(exc)) from None


def _aws_credentials(
    config: Config, admin: AdministratorKey, endpoint_url: str
) -> awsprofile.AwsCredentials:
    return awsprofile.AwsCredentials(
        access_key_id=admin.key.id,
        secret_access_key=admin.secret,
        region=config.region,
        endpoint_url=endpoint_url,
        data_dir=str(config.data_path),
        ca_bundle=tls_init.ca_bundle(config),
    )


def administrator_credentials(
    config: Config,
    *,
    account: str | None = None,
    endpoint_url: str | None = None,
    create: bool = True,
) -> awsprofile.AwsCredentials:
    """The administrator's key, region and endpoint, of the configured account or of
    `account`. With `create` (for tests and scripts) the data directory, the database, the
    account and the key are created when missing; the `credentials` command never creates.
    The endpoint is the running server's URL as it recorded it (see `serving.client_endpoint`)
    unless `endpoint_url` is given."""
    if endpoint_url is None:
        endpoint_url = serving.client_endpoint(config).url

    async def key(identities: Identities) -> AdministratorKey:
        if create:
            return await identities.admin.ensure_administrator()
        return await identities.admin.administrator_key()

    admin = run(config, key, account=account, create=create)
    return _aws_credentials(config, admin, endpoint_url)


def login_password(config: Config, *, account: str | None = None, create: bool = True) -> str:
    """A `/v2/` password for the administrator, as `aws ecr get-login-password` prints it.
    `create` as for `administrator_credentials`."""

    async def issue(identities: Identities) -> str:
        if create:
            admin = await identities.admin.ensure_administrator()
        else:
            admin = await identities.admin.administrator_key()
        principal = admin.user.as_principal(admin.key.id)
        password, _expires_at = identities.authentication.issue_password(principal)
        return password

    return run(config, issue, account=account, create=create)


def create_account(config: Config, account: str) -> AdministratorKey:
    """Another account on this server: its registry and its administrator with a key.
    Idempotent: an account that exists keeps its administrator's key."""
    return run(
        config,
        lambda identities: identities.admin.ensure_administrator(),
        account=account,
        create=True,
    )


def delete_account(config: Config, account: str) -> None:
    """Delete an account that holds no repositories, with its identities and policies."""
    if account == config.account_id:
        raise AdminError(
            f"the account {account} is the server's own (account_id in the configuration) "
            "and cannot be deleted"
        )
    run(config, lambda identities: identities.admin.delete_account(), account=account)


def list_accounts(config: Config) -> list[tuple[str, str, float]]:
    """(account id, region, created at) of every account this server holds."""

    async def accounts(store: MetadataStore) -> list[tuple[str, str, float]]:
        async with store.read() as tx:
            return await tx.registries.list_registries()

    return run_on_store(config, accounts)


def delete_repository_policy(config: Config, repository: str, *, account: str | None = None) -> str:
    """Delete a repository's policy as the account's root would, whatever the policy says:
    the way out when a policy (set with `--force`) locks everyone out. Returns its text."""
    registry = account or config.account_id
    if not ACCOUNT_ID.fullmatch(registry):
        raise AdminError(f"an account id is twelve digits, not {registry!r}")

    async def delete(store: MetadataStore) -> str:
        policies = PolicyService(store, time.time, region=config.region)
        return (await policies.delete_repository_policy(registry, repository)).text

    return run_on_store(config, delete)


def delete_registry_policy(config: Config, *, account: str | None = None) -> str:
    """Delete the account's registry policy as its root would. Returns its text."""
    registry = account or config.account_id
    if not ACCOUNT_ID.fullmatch(registry):
        raise AdminError(f"an account id is twelve digits, not {registry!r}")

    async def delete(store: MetadataStore) -> str:
        policies = PolicyService(store, time.time, region=config.region)
        return (await policies.delete_registry_policy(registry)).text

    return run_on_store(config, delete)


# -- the AWS profile --------------------------------------------------------------------------


def owns_profile(config: Config, saved: awsprofile.SavedProfile, key_ids: set[str]) -> bool:
    """Whether `saved` is this registry's: it names this data directory, or holds one of the
    administrator's keys (`key_ids`)."""
    return saved.data_dir == str(config.data_path) or (
        saved.access_key_id is not None and saved.access_key_id in key_ids
    )


def foreign_profile_message(saved: awsprofile.SavedProfile) -> str:
    files = awsprofile.profile_files()
    return (
        f"the AWS profile [{saved.name}] in {files.credentials} belongs to another registry "
        f"(key {saved.access_key_id or '-'}, endpoint {saved.endpoint_url or '-'}"
        + (f", data dir {saved.data_dir}" if saved.data_dir else "")
        + "); it is left as it is. Choose another name with aws_profile in the configuration "
        "(CARGOHOLD_AWS_PROFILE) or `cargohold admin init --profile NAME`, or replace it with "
        "`cargohold admin init --force`"
    )


def initialize(
    config: Config,
    *,
    rotate: bool = False,
    profile: str | None = awsprofile.DEFAULT_PROFILE,
    endpoint_url: str | None = None,
    force: bool = False,
) -> tuple[AdministratorKey, awsprofile.ProfileFiles | None]:
    """Ensure the administrator and its key; write them as the AWS `profile` (None: don't),
    whose endpoint is `endpoint_url` (None: the running server's, see `client_endpoint`).
    A profile of another registry is not replaced unless `force` (AdminError)."""
    create = partial(run, config, account=None, create=True)
    admin = create(lambda identities: identities.admin.ensure_administrator())
    saved = None if profile is None else awsprofile.read_profile(profile)
    if saved is not None and not force and not owns_profile(config, saved, {admin.key.id}):
        raise AdminError(foreign_profile_message(saved))
    if rotate:
        admin = create(lambda identities: identities.admin.ensure_administrator(rotate=True))
    files = None
    if profile is not None:
        url = serving.client_endpoint(config).url if endpoint_url is None else endpoint_url
        files = awsprofile.write_profile(_aws_credentials(config, admin, url), profile=profile)
    return admin, files


def credentials_hint(config: Config, config_file: str | None) -> str:
    """The `eval "$(cargohold admin credentials …)"` line for this server's data."""
    words = ["cargohold", "admin", "credentials", "--data-dir", str(config.data_path)]
    if config_file is not None:
        words += ["--config", config_file]
    return f'eval "$({shlex.join(words)})"'


def first_start(
    config: Config, *, aws_profile: bool = True, config_file: str | None = None
) -> None:
    """What `serve` does once its port is bound: the administrator exists, and the AWS
    profile `config.aws_profile` (unless not `aws_profile`) holds its key and points at the
    URL served now: written when missing, updated when it is this registry's and out of date,
    and left alone, saying so, when it belongs to another registry. Prints what it did, never
    the secret (a server's output is often a log)."""
    admin, _ = initialize(config, profile=None)
    url = config.resolved_public_url
    profile = config.aws_profile
    usable = False
    if aws_profile:
        saved = awsprofile.read_profile(profile)
        credentials = _aws_credentials(config, admin, url)
        if saved is None:
            files = awsprofile.write_profile(credentials, profile=profile)
            usable = True
            if admin.created:
                print(
                    f"created the administrator's access key {admin.key.id}; saved as AWS "
                    f"profile [{profile}] in {files.credentials} and {files.config}",
                    flush=True,
                )
            else:
                print(
                    f"saved the administrator's access key {admin.key.id} as AWS profile "
                    f"[{profile}] in {files.credentials} and {files.config}",
                    flush=True,
                )
        elif owns_profile(config, saved, {admin.key.id}):
            current = (admin.key.id, url, config.region, str(config.data_path))
            if (saved.access_key_id, saved.endpoint_url, saved.region, saved.data_dir) != current:
                files = awsprofile.write_profile(credentials, profile=profile)
                print(f"AWS profile [{profile}] in {files.config} points at {url}", flush=True)
            usable = True
        else:
            print(f"cargohold: {foreign_profile_message(saved)}", flush=True)
    if admin.created and not usable:
        print(f"created the administrator's access key {admin.key.id}", flush=True)
    hint = credentials_hint(config, config_file)
    if usable:
        print(f"credentials: aws --profile {profile} ecr …, or {hint}", flush=True)
    else:
        print(f"credentials: {hint}", flush=True)


# -- the commands -----------------------------------------------------------------------------
