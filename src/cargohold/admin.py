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
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias, TypeVar

import anyio

from cargohold import awsprofile, serving, tls_init
from cargohold.auth.errors import SecretBoxError
from cargohold.config import Config
from cargohold.domain.identity import AccessKey, IdentityError
from cargohold.metadata.store import MetadataStore
from cargohold.service.credentials import AdministratorKey
from cargohold.service.identity import Identities

ACCOUNT_ID = re.compile(r"\d{12}", re.ASCII)

T = TypeVar("T")

DEFAULT_PROFILE = awsprofile.DEFAULT_PROFILE

Loader = Callable[[argparse.Namespace], Config]


class AdminError(Exception):
    """A command that cannot be carried out; its message is for the terminal."""


# -- running operations on a data directory ---------------------------------------------------


async def _with_store(config: Config, operation: Callable[[MetadataStore], Awaitable[T]]) -> T:
    from cargohold.app import opened_store  # the composition root; it brings the HTTP fronts

    async with opened_store(config) as store:
        return await operation(store)


async def _with_identities(
    config: Config,
    operation: Callable[[Identities], Awaitable[T]],
    account: str | None,
) -> T:
    async def on(store: MetadataStore) -> T:
        identities = Identities.from_data_dir(
            store,
            config.data_path,
            time.time,
            account_id=account or config.account_id,
            region=config.region,
        )
        return await operation(identities)

    return await _with_store(config, on)


def run(
    config: Config,
    operation: Callable[[Identities], Awaitable[T]],
    *,
    account: str | None = None,
) -> T:
    """Run one identity operation on the config's database, in `account` (the configured
    account when None); errors become AdminError."""
    if account is not None and not ACCOUNT_ID.fullmatch(account):
        raise AdminError(f"an account id is twelve digits, not {account!r}")
    try:
        return anyio.run(_with_identities, config, operation, account)
    except (IdentityError, SecretBoxError) as exc:
        raise AdminError(str(exc)) from None


def _aws_credentials(
    config: Config, admin: AdministratorKey, endpoint_url: str
) -> awsprofile.AwsCredentials:
    return awsprofile.AwsCredentials(
        access_key_id=admin.key.id,
        secret_access_key=admin.secret,
        region=config.region,
        endpoint_url=endpoint_url,
        ca_bundle=tls_init.ca_bundle(config),
    )


def administrator_credentials(
    config: Config, *, account: str | None = None, endpoint_url: str | None = None
) -> awsprofile.AwsCredentials:
    """The administrator's key (created if there is none yet), region and endpoint, of the
    configured account or of `account`. The endpoint is the running server's URL as it recorded
    it (see `serving.client_endpoint`) unless `endpoint_url` is given."""
    if endpoint_url is None:
        endpoint_url = serving.client_endpoint(config).url
    admin = run(config, lambda identities: identities.admin.ensure_administrator(), account=account)
    return _aws_credentials(config, admin, endpoint_url)


def login_password(config: Config, *, account: str | None = None) -> str:
    """A `/v2/` password for the administrator, as `aws ecr get-login-password` prints it."""

    async def issue(identities: Identities) -> str:
        admin = await identities.admin.ensure_administrator()
        principal = admin.user.as_principal(admin.key.id)
        password, _expires_at = identities.authentication.issue_password(principal)
        return password

    return run(config, issue, account=account)


def create_account(config: Config, account: str) -> AdministratorKey:
    """Another account on this server: its registry and its administrator with a key.
    Idempotent: an account that exists keeps its administrator's key."""
    return run(config, lambda identities: identities.admin.ensure_administrator(), account=account)


def list_accounts(config: Config) -> list[tuple[str, str, float]]:
    """(account id, region, created at) of every account this server holds."""

    async def accounts(store: MetadataStore) -> list[tuple[str, str, float]]:
        async with store.read() as tx:
            return await tx.registries.list_registries()

    return anyio.run(_with_store, config, accounts)


def initialize(
    config: Config,
    *,
    rotate: bool = False,
    profile: str | None = awsprofile.DEFAULT_PROFILE,
    endpoint_url: str | None = None,
) -> tuple[AdministratorKey, awsprofile.ProfileFiles | None]:
    """Ensure the administrator and its key; write them as the AWS `profile` (None: don't),
    whose endpoint is `endpoint_url` (None: the running server's, see `client_endpoint`)."""
    admin = run(config, lambda identities: identities.admin.ensure_administrator(rotate=rotate))
    files = None
    if profile is not None:
        url = serving.client_endpoint(config).url if endpoint_url is None else endpoint_url
        files = awsprofile.write_profile(_aws_credentials(config, admin, url), profile=profile)
    return admin, files


def first_start(config: Config, *, profile: str | None = awsprofile.DEFAULT_PROFILE) -> None:
    """What `serve` does before it listens: the administrator exists, and a new key is saved as
    an AWS profile. Prints where, never the secret (a server's output is often a log)."""
    admin, _ = initialize(config, profile=None)
    if admin.created and profile is not None:
        credentials = _aws_credentials(config, admin, config.resolved_public_url)
        files = awsprofile.write_profile(credentials, profile=profile)
        print(
            f"created the administrator's access key {admin.key.id}; saved as AWS profile "
            f"[{profile}] in {files.credentials} and {files.config}",
            flush=True,
        )
    print(
        f"credentials: aws --profile {profile or awsprofile.DEFAULT_PROFILE} ecr …, or "
        f'eval "$(cargohold admin credentials --data-dir {config.data_path})"',
        flush=True,
    )


# -- the commands -----------------------------------------------------------------------------


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


def _key_rows(keys: Sequence[AccessKey]) -> list[list[str]]:
    return [
        [key.id, key.user_name, key.status, _when(key.created_at), _when(key.last_used_at)]
        for key in keys
    ]


def _endpoint(config: Config) -> str:
    """The running server's URL; when it is not known for sure, says so on standard error."""
    endpoint = serving.client_endpoint(config)
    if endpoint.warning is not None:
        print(f"cargohold: {endpoint.warning}", file=sys.stderr)
    return endpoint.url


def _init(config: Config, args: argparse.Namespace) -> int:
    profile = None if args.no_profile else args.profile
    url = None if profile is None else _endpoint(config)
    admin, files = initialize(config, rotate=args.rotate, profile=profile, endpoint_url=url)
    verb = "created" if admin.created else "kept"
    print(f"administrator: {admin.user.arn}")
    print(f"access key: {admin.key.id} ({verb})")
    if admin.created:
        print(f"secret access key: {admin.secret}  (shown once)")
    if files is not None:
        print(f"AWS profile [{profile}] written to {files.credentials} and {files.config}")
        print(f"endpoint: {url}")
        print(f"try: aws --profile {profile} ecr describe-repositories")
    print('for scripts: eval "$(cargohold admin credentials)"')
    return 0


def _credentials(config: Config, args: argparse.Namespace) -> int:
    credentials = administrator_credentials(
        config, account=args.account, endpoint_url=_endpoint(config)
    )
    for line in awsprofile.export_lines(credentials):
        print(line)
    return 0


def _login_password(config: Config, args: argparse.Namespace) -> int:
    print(login_password(config, account=args.account))
    return 0


def _account_create(config: Config, args: argparse.Namespace) -> int:
    admin = create_account(config, args.account_id)
    verb = "created" if admin.created else "kept"
    print(f"account: {args.account_id} ({config.region})")
    print(f"administrator: {admin.user.arn}")
    print(f"access key: {admin.key.id} ({verb})")
    if admin.created:
        print(f"secret access key: {admin.secret}  (shown once)")
    print(f'for scripts: eval "$(cargohold admin credentials --account {args.account_id})"')
    return 0


def _account_list(config: Config, args: argparse.Namespace) -> int:
    accounts = list_accounts(config)
    _table(
        ["ACCOUNT", "REGION", "CREATED"],
        [[account, region, _when(created)] for account, region, created in accounts],
    )
    return 0


def _user_create(config: Config, args: argparse.Namespace) -> int:
    user = run(config, lambda identities: identities.admin.create_user(args.name, path=args.path))
    print(f"{user.name}  {user.id}  {user.arn}")
    return 0


def _user_delete(config: Config, args: argparse.Namespace) -> int:
    keys = run(config, lambda identities: identities.admin.delete_user(args.name, force=args.force))
    suffix = f" and its access keys {', '.join(keys)}" if keys else ""
    print(f"deleted user {args.name}{suffix}")
    return 0


def _user_list(config: Config, args: argparse.Namespace) -> int:
    users = run(config, lambda identities: identities.admin.list_users())
    _table(
        ["NAME", "USER ID", "ARN", "CREATED"],
        [[user.name, user.id, user.arn, _when(user.created_at)] for user in users],
    )
    return 0


def _key_create(config: Config, args: argparse.Namespace) -> int:
    created = run(config, lambda identities: identities.admin.create_access_key(args.user))
    print(f"access key id: {created.key.id}")
    print(f"secret access key: {created.secret}  (shown once)")
    return 0


def _key_delete(config: Config, args: argparse.Namespace) -> int:
    run(config, lambda identities: identities.admin.delete_access_key(args.key_id))
    print(f"deleted access key {args.key_id}")
    return 0


def _key_status(status: str) -> Callable[[Config, argparse.Namespace], int]:
    def command(config: Config, args: argparse.Namespace) -> int:
        key = run(
            config, lambda identities: identities.admin.set_access_key_status(args.key_id, status)
        )
        print(f"access key {key.id} of {key.user_name} is {key.status}")
        return 0

    return command


def _key_list(config: Config, args: argparse.Namespace) -> int:
    keys = run(config, lambda identities: identities.admin.list_access_keys(args.user))
    _table(["ACCESS KEY ID", "USER", "STATUS", "CREATED", "LAST USED"], _key_rows(keys))
    return 0


# -- the parser -------------------------------------------------------------------------------


Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _profile_name(value: str) -> str:
    if not awsprofile.is_profile_name(value):
        raise argparse.ArgumentTypeError(f"invalid profile name {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class _Commands:
    """Adds the subcommands of `admin`: `common` adds --config/--data-dir to each."""

    verbs: Subcommands
    common: Callable[..., None]
    load: Loader

    def group(self, name: str, help_text: str) -> Subcommands:
        parser = self.verbs.add_parser(name, help=help_text)
        self.common(parser, default=argparse.SUPPRESS)
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")

    def leaf(
        self,
        parent: Subcommands,
        name: str,
        help_text: str,
        handler: Callable[[Config, argparse.Namespace], int],
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
        # Also accepted after the verb; SUPPRESS keeps a value given before it.
        self.common(parser, default=argparse.SUPPRESS)
        load = self.load
        parser.set_defaults(func=lambda args: _guarded(handler, load(args), args))
        return parser


def add_parser(commands: Subcommands, common: Callable[..., None], load: Loader) -> None:
    """Add `admin …` to the top-level `commands`; `common` adds --config/--data-dir."""
    admin = commands.add_parser("admin", help="users, access keys and credentials")
    common(admin)
    verbs = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    admin_commands = _Commands(verbs, common, load)
    _add_administrator_commands(admin_commands)
    _add_account_commands(admin_commands)
    _add_user_commands(admin_commands)
    _add_access_key_commands(admin_commands)
    _add_tls_commands(admin_commands)


def _add_administrator_commands(commands: _Commands) -> None:
    verbs, leaf = commands.verbs, commands.leaf
    init = leaf(verbs, "init", "create the administrator and its key; write an AWS profile", _init)
    init.add_argument("--rotate", action="store_true", help="replace the administrator's key")
    init.add_argument(
        "--profile",
        type=_profile_name,
        default=awsprofile.DEFAULT_PROFILE,
        help=f"AWS profile to write (default {awsprofile.DEFAULT_PROFILE})",
    )
    init.add_argument("--no-profile", action="store_true", help="do not write an AWS profile")
    account_help = "the administrator of this account (default: the configured account)"
    leaf(
        verbs, "credentials", "print the administrator's key as shell export lines", _credentials
    ).add_argument("--account", help=account_help)
    leaf(
        verbs,
        "login-password",
        "print a /v2/ password for the administrator, as `aws ecr get-login-password` does",
        _login_password,
    ).add_argument("--account", help=account_help)


def _add_account_commands(commands: _Commands) -> None:
    leaf = commands.leaf
    accounts = commands.group("account", "the accounts (registries) this server holds")
    leaf(
        accounts,
        "create",
        "add an account with its own administrator and key (prints the secret once)",
        _account_create,
    ).add_argument("account_id", metavar="ACCOUNT_ID", help="twelve digits")
    leaf(accounts, "list", "list accounts", _account_list)


def _add_user_commands(commands: _Commands) -> None:
    leaf = commands.leaf
    users = commands.group("user", "IAM users")
    create = leaf(users, "create", "create a user", _user_create)
    create.add_argument("name")
    create.add_argument("--path", default="/", help="IAM path (default /)")
    delete = leaf(users, "delete", "delete a user", _user_delete)
    delete.add_argument("name")
    delete.add_argument("--force", action="store_true", help="delete its access keys too")
    leaf(users, "list", "list users", _user_list)


def _add_access_key_commands(commands: _Commands) -> None:
    leaf = commands.leaf
    keys = commands.group("access-key", "access keys")
    leaf(keys, "create", "create an access key (prints the secret once)", _key_create).add_argument(
        "user"
    )
    leaf(keys, "delete", "delete an access key", _key_delete).add_argument("key_id")
    leaf(keys, "activate", "activate an access key", _key_status("Active")).add_argument("key_id")
    leaf(keys, "deactivate", "deactivate an access key", _key_status("Inactive")).add_argument(
        "key_id"
    )
    leaf(keys, "list", "list access keys", _key_list).add_argument("user", nargs="?")


def _tls_init(config: Config, args: argparse.Namespace) -> int:
    profile = None if args.no_profile else args.profile

    def write_profile(endpoint: str, bundle: str) -> awsprofile.ProfileFiles | None:
        if profile is None:
            return None
        admin, _ = initialize(config, profile=None)
        credentials = awsprofile.AwsCredentials(
            admin.key.id, admin.secret, config.region, endpoint, ca_bundle=bundle
        )
        return awsprofile.write_profile(credentials, profile=profile)

    accounts = [account for account, _region, _created in list_accounts(config)]
    if config.account_id not in accounts:
        accounts.insert(0, config.account_id)
    for line in tls_init.init(config, args.host, accounts, write_profile):
        print(line)
    return 0


def _add_tls_commands(commands: _Commands) -> None:
    tls = commands.group("tls", "HTTPS certificates")
    init = commands.leaf(
        tls, "init", "make a local CA and a server certificate; say how to trust it", _tls_init
    )
    tls_init.add_arguments(init)
    init.add_argument(
        "--profile",
        type=_profile_name,
        default=awsprofile.DEFAULT_PROFILE,
        help="AWS profile to write with the https endpoint and the CA bundle "
        f"(default {awsprofile.DEFAULT_PROFILE})",
    )
    init.add_argument("--no-profile", action="store_true", help="do not write an AWS profile")


def _guarded(
    handler: Callable[[Config, argparse.Namespace], int], config: Config, args: argparse.Namespace
) -> int:
    try:
        return handler(config, args)
    except (AdminError, OSError) as exc:
        print(f"cargohold: {exc}", file=sys.stderr)
        return 1
