"""``provisioner worker [--processes N]``: consume and provision until SIGTERM; with N > 1,
a supervisor runs N worker processes and restarts any that dies."""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from collections.abc import Callable
from typing import Any

import structlog

from workers.broker.consumer import BrokerRefused, Worker
from workers.directory.ldap_directory import LdapDirectory
from workers.directory.port import Directory
from workers.ops import bootstrap
from workers.runtime.settings import Settings
from workers.runtime.supervisor import Supervisor, child_argv


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("worker", help="consume and provision until SIGTERM")
    parser.set_defaults(handler=run)
    parser.add_argument(
        "--processes", type=int, default=1, help="run N worker processes, restarting any that dies"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.processes > 1:
        supervisor = Supervisor(
            child_argv(sys.argv[1:]), args.processes, metrics_port=settings.metrics_port
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: supervisor.request_stop())
        return supervisor.run()
    worker = Worker(settings, directory_factories(settings))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.request_stop())
    log = structlog.get_logger("worker")
    try:
        worker.run()
    except (bootstrap.BootstrapError, BrokerRefused) as exc:
        log.exception("worker.preflight_failed", error=str(exc))
        raise
    return 0


def directory_factories(
    settings: Settings,
) -> Callable[[], Directory] | dict[str, Callable[[], Directory]]:
    """How the worker connects: to its one DC, or to each of several by name."""
    dcs = settings.domain_controllers
    if len(dcs) == 1:
        return lambda: LdapDirectory.connect(settings, dcs[0])
    return {dc.name: functools.partial(LdapDirectory.connect, settings, dc) for dc in dcs}
