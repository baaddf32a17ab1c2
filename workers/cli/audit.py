"""``provisioner audit [--tenant T] [--fix]``: every tenant compared with what it should be;
``--fix`` converges what differs (platform drift with an administrator's credential)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from workers.cli.common import EXIT_FAILURE, admin_options, as_admin, say
from workers.directory.ldap_directory import LdapDirectory
from workers.ops import audit, audit_metrics
from workers.provisioning.keys import KeyRing
from workers.provisioning.realm import read_realm
from workers.runtime.settings import Settings


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("audit", help="compare every tenant with what it should be")
    parser.set_defaults(handler=run)
    parser.add_argument("--tenant", help="only this tenant")
    parser.add_argument("--fix", action="store_true", help="converge what differs")
    parser.add_argument("--metrics-file", help="write the drift gauge here (Prometheus textfile)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="JSON Lines: one object a finding (state: drift, fixed or still), no summary",
    )
    admin_options(parser)


def run(settings: Settings, args: argparse.Namespace) -> int:
    with LdapDirectory.connect(as_admin(settings, args)) as directory:
        realm = read_realm(directory, settings.ldap_bind_dn)
        ctx = KeyRing.from_settings(settings).context(realm, "audit", settings.sam_digits)
        findings = audit.audit(directory, realm, ctx, args.tenant)
        for finding in findings:
            _report("drift", finding, as_json=args.json)
        if findings and args.fix:
            for change in audit.fix(directory, realm, ctx, findings):
                say(
                    json.dumps({"state": "fixed", "change": change})
                    if args.json
                    else f"fixed: {change}"
                )
            findings = audit.audit(directory, realm, ctx, args.tenant)
            for finding in findings:
                _report("still", finding, as_json=args.json)
    if args.metrics_file:
        audit_metrics.write(args.metrics_file, findings)
    if not args.json:
        say(f"{len(findings)} difference(s)" if findings else "no drift")
    return EXIT_FAILURE if findings else 0


def _report(state: str, finding: audit.Finding, *, as_json: bool) -> None:
    if as_json:
        record = {
            "state": state,
            "tenant": finding.tenant,
            "kind": finding.kind,
            "detail": finding.detail,
        }
        say(json.dumps(record, sort_keys=True))
    else:
        say(f"{state}: {finding}")
