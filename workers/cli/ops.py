"""``provisioner ops serve``: the operator's web page (dead letters and the fleet's
status, :mod:`workers.web`), on loopback by default, behind the operator's password."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import structlog
import waitress

from workers.cli.common import EXIT_USAGE, Refused
from workers.runtime.settings import Settings, env_name
from workers.web.app import USER, create_app

log = structlog.get_logger()


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("ops", help="the operator's web page")
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="action", required=True)
    serve = actions.add_parser(
        "serve", help="serve it on PROVISIONER_OPS_ADDRESS:PROVISIONER_OPS_PORT"
    )
    serve.add_argument(
        "--worker",
        action="append",
        metavar="URL",
        help="a worker's endpoint for the status (repeat it); default: as provisioner status",
    )


def password(settings: Settings) -> str:
    name = env_name("ops_password_file")
    if not settings.ops_password_file:
        raise Refused(
            f"{name} is not set: the page serves nobody without the operator's password",
            EXIT_USAGE,
        )
    try:
        secret = Path(settings.ops_password_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise Refused(f"{name}: {exc}", EXIT_USAGE) from None
    if not secret:
        raise Refused(f"{name}: {settings.ops_password_file} is empty", EXIT_USAGE)
    return secret


def run(settings: Settings, args: argparse.Namespace) -> int:
    app = create_app(settings, password(settings), workers=args.worker)
    url = f"http://{settings.ops_address}:{settings.ops_port}/"
    log.info("ops.serving", url=url, user=USER)
    waitress.serve(app, host=settings.ops_address, port=settings.ops_port, threads=4, _quiet=True)
    return 0
