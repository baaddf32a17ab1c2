"""``provisioner``: the one command line of the project.  Each command group is a module of
this package, holding its options beside its handler:

provisioner settings                          every setting, its variable and value
provisioner topology apply | export           declare the broker topology, or print it
provisioner directory bootstrap --admin-bind-dn DN --admin-password-file F
                                              List Object Mode, OU=Tenants, its lock, and
                                              the fleet's delegated rights (as an admin)
provisioner directory check                   all of that in place (the worker's preflight)
provisioner directory tenants [--wait T]      the tenant OUs, read back over LDAPS
provisioner publish --file F | TYPE --data J  confirmed; plaintext passwords sealed here
provisioner plan TYPE --data J                the steps an event would run now (dry run)
provisioner worker [--processes N]            consume and provision until SIGTERM
provisioner dlq list|show|replay|discard|export|import   dead letters
provisioner audit [--tenant T] [--fix]        drift of tenants from what they should be
                                              (platform drift: --fix with --admin-bind-dn)
provisioner records list --tenant T [--user U] who asked for each change applied to it
provisioner records purge                     idempotency records past their retention
provisioner keys generate                     a key pair (the results consumer's)
provisioner keys init | rotate | retire | list the fleet's key ring (rotation, no downtime)
provisioner status [--json]                   the fleet on one screen; exit 1 when wrong
provisioner ops serve                         the operator's web page: dead letters, status
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from messages.publisher import PublishError
from workers.broker.connection import BrokerError
from workers.cli import (
    audit,
    directory,
    dlq,
    keys,
    ops,
    plan,
    publish,
    records,
    settings,
    status,
    topology,
    worker,
)
from workers.cli.common import EXIT_FAILURE, EXIT_USAGE, Refused, silence_stdout
from workers.errors import FleetError
from workers.runtime import logs
from workers.runtime.settings import Settings, SettingsError, flag_fields, value_type

GROUPS = (
    settings,
    topology,
    directory,
    publish,
    plan,
    dlq,
    audit,
    records,
    keys,
    worker,
    status,
    ops,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provisioner", description="Provision hosted tenants into Active Directory."
    )
    for f in flag_fields():
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=value_type(type(f.default)),
            help=f.metadata["doc"],
            default=None,
        )
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in flag_fields()}
    try:
        loaded = Settings.from_env(os.environ, overrides)
    except SettingsError as exc:
        print(f"provisioner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(loaded.log_format, loaded.log_level)
    return _run(args, loaded)


def _run(args: argparse.Namespace, loaded: Settings) -> int:
    """The command, its errors as one line each and an exit code (docs/operations.md)."""
    try:
        code: int = args.handler(loaded, args)
        sys.stdout.flush()  # here, not at exit: a reader gone away is handled below
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        silence_stdout()
        return 0
    except Refused as exc:
        print(f"provisioner: {exc}", file=sys.stderr)
        return exc.exit_code
    except SettingsError as exc:
        print(f"provisioner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FleetError, PublishError) as exc:
        print(f"provisioner: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokerError as exc:
        print(f"provisioner: broker error: {exc!r}", file=sys.stderr)
        return EXIT_FAILURE
    return code


if __name__ == "__main__":
    sys.exit(main())
