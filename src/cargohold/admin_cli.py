"""The `cargohold admin …` command line: its parsers, and the commands that print what
`cargohold.admin` does on the metadata database."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cargohold import awsprofile, serving, tls_init
from cargohold.admin import (
    AdminError,
    Loader,
    administrator_credentials,
    create_account,
    delete_account,
    delete_registry_policy,
    delete_repository_policy,
    initialize,
    list_accounts,
    login_password,
    run,
)
from cargohold.commandline import Subcommands, subcommands
from cargohold.config import Config
from cargohold.domain.identity import AccessKey


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


def _init_endpoint(config: Config, profile: str) -> str:
    """The endpoint `init` writes: the running server's recorded URL, else the configured
    `public_url`, else the one this registry's profile already names, else the configured
    host and port (saying it is assumed)."""
    if serving.read_record(config) is None and not config.public_url:
        saved = awsprofile.read_profile(profile)
        if saved is not None and saved.endpoint_url and saved.data_dir == str(config.data_path):
            print(
                f"cargohold: no running server has recorded its URL in "
                f"{serving.record_path(config)}; keeping the endpoint {saved.endpoint_url} "
                f"of profile [{profile}]",
                file=sys.stderr,
            )
            return saved.endpoint_url
    return _endpoint(config)


def _init(config: Config, args: argparse.Namespace) -> int:
    profile = None if args.no_profile else (args.profile or config.aws_profile)
    url = None if profile is None else _init_endpoint(config, profile)
    admin, files = initialize(
        config, rotate=args.rotate, profile=profile, endpoint_url=url, force=args.force
    )
    verb = "created" if admin.created else "kept"
    print(f"administrator: {admin.user.arn}")
    print(f"access key: {admin.key.id} ({verb})")
    if admin.created:
        print(f"secret access key: {admin.secret}  {SECRET_AGAIN}")
    if files is not None:
        print(f"AWS profile [{profile}] written to {files.credentials} and {files.config}")
        print(f"endpoint: {url}")
        print(f"try: aws --profile {profile} ecr describe-repositories")
    print('for scripts: eval "$(cargohold admin credentials)"')
    return 0


def _credentials(config: Config, args: argparse.Namespace) -> int:
    credentials = administrator_credentials(
        config, account=args.account, endpoint_url=_endpoint(config), create=False
    )
    for line in awsprofile.export_lines(credentials):
        print(line)
    return 0


def _login_password(config: Config, args: argparse.Namespace) -> int:
    print(login_password(config, account=args.account, create=False))
    return 0


#: What follows an administrator's secret: `credentials` shows it again.
SECRET_AGAIN = "(`cargohold admin credentials` shows it again)"  # noqa: S105 (a note)
#: What follows a user's secret: nothing shows it again.
SECRET_ONCE = "(shown once)"  # noqa: S105 (a note)


def _account_create(config: Config, args: argparse.Namespace) -> int:
    admin = create_account(config, args.account_id)
    verb = "created" if admin.created else "kept"
    print(f"account: {args.account_id} ({config.region})")
    print(f"administrator: {admin.user.arn}")
    print(f"access key: {admin.key.id} ({verb})")
    if admin.created:
        print(
            f"secret access key: {admin.secret}  (`cargohold admin credentials --account "
            f"{args.account_id}` shows it again)"
        )
    print(f'for scripts: eval "$(cargohold admin credentials --account {args.account_id})"')
    return 0


def _account_delete(config: Config, args: argparse.Namespace) -> int:
    delete_account(config, args.account_id)
    print(f"deleted account {args.account_id}")
    return 0


def _repository_policy_delete(config: Config, args: argparse.Namespace) -> int:
    delete_repository_policy(config, args.repository, account=args.account)
    registry = args.account or config.account_id
    print(f"deleted the repository policy of {args.repository} in account {registry}")
    return 0


def _registry_policy_delete(config: Config, args: argparse.Namespace) -> int:
    delete_registry_policy(config, account=args.account)
    print(f"deleted the registry policy of account {args.account or config.account_id}")
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
    print(f"secret access key: {created.secret}  {SECRET_ONCE}")
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
        parser = self.verbs.add_parser(name, help=help_text, description=help_text)
        self.common(parser, default=argparse.SUPPRESS)
        return subcommands(parser, f"{name}_command")

    def leaf(
        self,
        parent: Subcommands,
        name: str,
        help_text: str,
        handler: Callable[[Config, argparse.Namespace], int],
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(
            name, help=help_text, description=help_text
        )
        # Also accepted after the verb; SUPPRESS keeps a value given before it.
        self.common(parser, default=argparse.SUPPRESS)
        load = self.load
        parser.set_defaults(func=lambda args: _guarded(handler, load(args), args))
        return parser


def add_parser(commands: Subcommands, common: Callable[..., None], load: Loader) -> None:
    """Add `admin …` to the top-level `commands`; `common` adds --config/--data-dir."""
    admin = commands.add_parser(
        "admin",
        help="accounts, users, access keys, credentials and policies, on the database",
        description="Administration straight on the metadata database; the server need not "
        "run. Only `init` and `account create` create anything: every other command fails "
        "when the data directory, database or account does not exist.",
    )
    common(admin)
    verbs = subcommands(admin, "admin_command")
    admin_commands = _Commands(verbs, common, load)
    _add_administrator_commands(admin_commands)
    _add_account_commands(admin_commands)
    _add_user_commands(admin_commands)
    _add_access_key_commands(admin_commands)
    _add_policy_commands(admin_commands)
    _add_tls_commands(admin_commands)


ACCOUNT_HELP = "the account to act in (default: account_id of the configuration, 123456789012)"


def _add_administrator_commands(commands: _Commands) -> None:
    verbs, leaf = commands.verbs, commands.leaf
    init = leaf(verbs, "init", "create the administrator and its key; write an AWS profile", _init)
    init.add_argument(
        "--rotate", action="store_true", help="replace the administrator's key (default: keep it)"
    )
    init.add_argument(
        "--profile",
        type=_profile_name,
        default=None,
        help="AWS profile to write (default: aws_profile of the configuration, "
        f"{awsprofile.DEFAULT_PROFILE})",
    )
    init.add_argument(
        "--no-profile", action="store_true", help="do not write an AWS profile (default: write)"
    )
    init.add_argument(
        "--force",
        action="store_true",
        help="replace the profile even when it belongs to another registry (default: refuse)",
    )
    leaf(
        verbs,
        "credentials",
        "print the administrator's key, region and endpoint as shell export lines",
        _credentials,
    ).add_argument("--account", help=ACCOUNT_HELP)
    leaf(
        verbs,
        "login-password",
        "print a /v2/ password for the administrator, as `aws ecr get-login-password` does",
        _login_password,
    ).add_argument("--account", help=ACCOUNT_HELP)


def _add_account_commands(commands: _Commands) -> None:
    leaf = commands.leaf
    accounts = commands.group("account", "the accounts (registries) this server holds")
    leaf(
        accounts,
        "create",
        "add an account with its own administrator and key (prints the key's secret)",
        _account_create,
    ).add_argument("account_id", metavar="ACCOUNT_ID", help="twelve digits")
    leaf(
        accounts,
        "delete",
        "delete an account that holds no repositories, with its users, roles, keys and policies",
        _account_delete,
    ).add_argument("account_id", metavar="ACCOUNT_ID", help="twelve digits")
    leaf(accounts, "list", "list the accounts", _account_list)


def _add_user_commands(commands: _Commands) -> None:
    leaf = commands.leaf
    users = commands.group("user", "IAM users")
    create = leaf(users, "create", "create a user", _user_create)
    create.add_argument("name", help="the user's name")
    create.add_argument("--path", default="/", help="IAM path (default /)")
    delete = leaf(users, "delete", "delete a user", _user_delete)
    delete.add_argument("name", help="the user's name")
    delete.add_argument(
        "--force",
        action="store_true",
        help="delete its access keys, policies and group memberships too (default: refuse)",
    )
    leaf(users, "list", "list the users", _user_list)


def _add_access_key_commands(commands: _Commands) -> None:
    leaf = commands.leaf
    keys = commands.group("access-key", "access keys")
    leaf(keys, "create", "create an access key (prints its secret once)", _key_create).add_argument(
        "user", help="the user the key is for"
    )
    key_help = "the access key id (AKIA…)"
    leaf(keys, "delete", "delete an access key", _key_delete).add_argument("key_id", help=key_help)
    leaf(keys, "activate", "activate an access key", _key_status("Active")).add_argument(
        "key_id", help=key_help
    )
    leaf(keys, "deactivate", "deactivate an access key", _key_status("Inactive")).add_argument(
        "key_id", help=key_help
    )
    leaf(keys, "list", "list access keys", _key_list).add_argument(
        "user", nargs="?", help="only this user's keys (default: every user's)"
    )


def _add_policy_commands(commands: _Commands) -> None:
    leaf = commands.leaf
    repository = commands.group(
        "repository-policy",
        "repository policies, as the account's root (the way out of a lock-out)",
    )
    delete = leaf(
        repository,
        "delete",
        "delete a repository's policy whatever it says (even one that denies everyone)",
        _repository_policy_delete,
    )
    delete.add_argument("repository", help="the repository's name")
    delete.add_argument("--account", help=ACCOUNT_HELP)
    registry = commands.group(
        "registry-policy", "the registry policy, as the account's root (the way out of a lock-out)"
    )
    leaf(
        registry,
        "delete",
        "delete the account's registry policy whatever it says",
        _registry_policy_delete,
    ).add_argument("--account", help=ACCOUNT_HELP)


def _tls_init(config: Config, args: argparse.Namespace) -> int:
    profile = None if args.no_profile else args.profile
    paths = tls_init.tls_paths(config)
    serving_tls = replace(config, tls_cert=str(paths.cert), tls_key=str(paths.key))
    try:
        accounts = [account for account, _region, _created in list_accounts(config)]
        exists = True
    except AdminError:
        accounts = []  # no registry yet: `serve` writes the profile on its first start
        exists = False
    if config.account_id not in accounts:
        accounts.insert(0, config.account_id)

    def write_profile(endpoint: str, bundle: str) -> awsprofile.ProfileFiles | None:
        if profile is None or not exists:
            return None
        _admin, files = initialize(serving_tls, profile=profile, endpoint_url=endpoint)
        return files

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
        help="AWS profile to write with the https endpoint and the CA bundle, when the "
        f"registry exists (default {awsprofile.DEFAULT_PROFILE})",
    )
    init.add_argument(
        "--no-profile", action="store_true", help="do not write an AWS profile (default: write it)"
    )


def _guarded(
    handler: Callable[[Config, argparse.Namespace], int], config: Config, args: argparse.Namespace
) -> int:
    try:
        return handler(config, args)
    except (AdminError, OSError) as exc:
        print(f"cargohold: {exc}", file=sys.stderr)
        return 1
