"""Whether a data directory and its database exist, for the commands that must not create them.

Only `serve`, `cargohold admin init` and `cargohold admin account create` create a registry's
state. Every other command works on what is there, and fails with `MissingState` (a message
for the terminal) when the data directory, its master key or the database is missing, rather
than creating an empty registry of its own beside the real one.
"""

from __future__ import annotations

from cargohold.config import Config
from cargohold.service.credentials import MASTER_KEY_FILE

CREATORS = "`cargohold serve` or `cargohold admin init` creates it"


class MissingState(Exception):
    """The data directory, master key or database the command needs does not exist."""


def _hint(config: Config) -> str:
    return (
        f"{CREATORS}; for an existing registry pass the --data-dir and --config its server "
        f"was started with (this command read data dir {config.data_path}"
        + (", database_url from the configuration" if config.database_url else "")
        + ")"
    )


def require_existing(config: Config, *, master_key: bool = True) -> None:
    """Raise MissingState unless the data directory, (with `master_key`) its master key, and
    an initialized metadata database all exist."""
    from cargohold.metadata import database  # the adapter, only where it is needed

    data = config.data_path
    if not data.is_dir():
        raise MissingState(f"there is no data directory {data}: {_hint(config)}")
    if master_key and not (data / MASTER_KEY_FILE).is_file():
        raise MissingState(
            f"{data} holds no registry (it has no {MASTER_KEY_FILE}): {_hint(config)}"
        )
    url = config.resolved_database_url
    try:
        ready = database.initialized(url)
    except Exception as exc:  # any driver's connection error: the message says which
        raise MissingState(f"cannot open the metadata database: {exc}") from None
    if not ready:
        where = "in the database of database_url" if config.database_url else f"in {data}"
        raise MissingState(f"there is no cargohold metadata database {where}: {_hint(config)}")
