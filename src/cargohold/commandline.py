"""What every command group of the `cargohold` command line shares: a group given no
subcommand prints its subcommands (on standard error, exit status 2) instead of argparse's
`the following arguments are required`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeAlias

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: The exit status of a command line that names no command.
USAGE_ERROR = 2


def _show_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return USAGE_ERROR

    return command


def subcommands(parser: argparse.ArgumentParser, dest: str) -> Subcommands:
    """The subcommands of `parser`; without one, `parser` prints its help."""
    verbs = parser.add_subparsers(dest=dest, metavar="COMMAND", title="commands")
    parser.set_defaults(func=_show_help(parser))
    return verbs
