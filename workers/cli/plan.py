"""``provisioner plan TYPE --data J``: the steps an event would run against the directory
now, and which are done already (a dry run: nothing is written)."""

from __future__ import annotations

import argparse
from typing import Any

from workers.cli.common import event_from_args, event_options
from workers.directory.ldap_directory import LdapDirectory
from workers.ops import dry_run
from workers.provisioning.realm import read_realm
from workers.runtime.settings import Settings


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "plan", help="print the steps an event would run against the directory now (no writes)"
    )
    parser.set_defaults(handler=run)
    event_options(parser)
    parser.add_argument("--idempotency-key", help="the job whose objects count as its own")


def run(settings: Settings, args: argparse.Namespace) -> int:
    envelope = event_from_args(settings, args, ("idempotency_key",))
    with LdapDirectory.connect(settings) as directory:
        realm = read_realm(directory, settings.ldap_bind_dn)
        for text in dry_run.describe(envelope, directory, realm, settings):
            print(text)
    return 0
