"""``provisioner directory bootstrap | check | tenants``: the one-time setup (as an
administrator, for that command alone), the worker's preflight, and the tenant OUs."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from workers.cli.common import EXIT_FAILURE, admin_options, as_admin
from workers.directory.ldap_directory import LdapDirectory
from workers.directory.port import Scope
from workers.ops import bootstrap
from workers.provisioning import names
from workers.provisioning.realm import read_realm
from workers.runtime.settings import Settings


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("directory", help="one-time directory setup and reads")
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="action", required=True)
    setup = actions.add_parser(
        "bootstrap",
        help="enable List Object Mode, create OU=Tenants, delegate the fleet its rights",
    )
    admin_options(setup)
    actions.add_parser("check", help="exit non-zero unless the directory is set up")
    tenants = actions.add_parser("tenants", help="list tenant OUs")
    tenants.add_argument(
        "--wait",
        nargs="*",
        default=[],
        metavar="TENANT",
        help="first wait until these tenants' OUs exist",
    )
    tenants.add_argument("--timeout", type=float, default=60.0)


def run(settings: Settings, args: argparse.Namespace) -> int:
    bind = as_admin(settings, args) if args.action == "bootstrap" else settings
    with LdapDirectory.connect(bind) as directory:
        realm = read_realm(directory, settings.ldap_bind_dn)
        if args.action == "bootstrap":
            changes = bootstrap.bootstrap(directory, realm)
            for change in changes:
                print(f"changed: {change}")
            print("directory bootstrapped" + ("" if changes else " (nothing to change)"))
        elif args.action == "check":
            bootstrap.check(directory, realm)
            print("directory ready: List Object Mode on, OU=Tenants present")
        else:
            return _tenants(directory, args.wait, args.timeout)
    return 0


def _tenants(directory: LdapDirectory, wait_for: list[str], timeout: float) -> int:
    tenants_dn = names.tenants_dn(directory.base_dn)
    deadline = time.monotonic() + timeout
    while True:
        entries = directory.search(
            tenants_dn, "(objectClass=organizationalUnit)", Scope.ONE_LEVEL, ["ou", "description"]
        )
        present = {str(e.first("ou")) for e in entries}
        missing = sorted(set(wait_for) - present)
        if not missing:
            break
        if time.monotonic() > deadline:
            print(
                f"provisioner: tenants not provisioned after {timeout:.0f} s: {', '.join(missing)}",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        time.sleep(0.5)
    for entry in sorted(entries, key=lambda e: e.dn):
        print(f"{entry.dn}\t{entry.first('description') or ''}")
    return 0
