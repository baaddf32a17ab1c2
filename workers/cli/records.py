"""``provisioner records list | purge``: the idempotency records, read as "who asked for
each change" and purged past their retention."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from workers.delivery.idempotency import Ledger
from workers.directory.ldap_directory import LdapDirectory
from workers.runtime.settings import Settings


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("records", help="idempotency records: who asked for what")
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list", help="the intents applied to a tenant or a user: when, what, who asked"
    )
    listing.add_argument("--tenant", required=True)
    listing.add_argument("--user", help="only this user of the tenant (its username)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    purge = actions.add_parser("purge", help="delete the records older than the retention")
    purge.add_argument(
        "--older-than-days",
        type=float,
        default=None,
        help="default: PROVISIONER_RECORDS_RETENTION_DAYS",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(settings, args.tenant, args.user, as_json=args.json)
    days = args.older_than_days
    if days is None:
        days = settings.records_retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with LdapDirectory.connect(settings) as directory:
        purged = Ledger(directory, directory.base_dn).purge(cutoff)
    print(f"purged {purged} idempotency record(s) applied before {cutoff:%Y-%m-%d %H:%M:%S}Z")
    return 0


def _list(settings: Settings, tenant: str, user: str | None, *, as_json: bool) -> int:
    """One row per applied intent, oldest first: the answer to "which order made this?"."""
    with LdapDirectory.connect(settings) as directory:
        records = Ledger(directory, directory.base_dn).history(tenant, user)
    rows = [
        {
            "occurred_at": r.occurred_at.isoformat().replace("+00:00", "Z")
            if r.occurred_at
            else None,
            "type": r.event_type,
            "producer": r.producer or None,
            "idempotency_key": r.idempotency_key or None,
            "message_id": r.message_id,
            "outcome": "succeeded",
        }
        for r in records
    ]
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    print("OCCURRED AT\tTYPE\tPRODUCER\tIDEMPOTENCY KEY\tMESSAGE ID\tOUTCOME")
    for row in rows:
        print("\t".join(str(row[k] or "-") for k in row))
    who = f"{tenant}/{user}" if user else tenant
    print(f"{len(rows)} intent(s) applied to {who}", file=sys.stderr)
    return 0
