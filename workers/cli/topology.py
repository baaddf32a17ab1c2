"""``provisioner topology apply | export``: declare the broker topology, or print it as a
RabbitMQ definitions file."""

from __future__ import annotations

import argparse
import json
from typing import Any

from workers.broker import connection, topology
from workers.runtime.settings import Settings


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("topology", help="broker topology")
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("apply", help="declare it")
    export = actions.add_parser("export", help="print it as a RabbitMQ definitions file")
    export.add_argument("--vhost", default="/provisioning")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "export":
        document = topology.definitions(args.vhost, settings.retry_policy)
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    topology.apply(connection.parameters(settings), settings.retry_policy)
    print("topology applied")
    return 0
