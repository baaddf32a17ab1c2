"""``provisioner status``: the fleet on one screen; exit 1 when something is wrong.

- the broker's queues (work, each retry tier, dead letters) with depths and consumers;
- the dead letters by error code;
- each worker process, from its own endpoint: live, ready, in flight, processed, and the
  time of its last success (``--worker URL`` names them; by default the ports from
  ``PROVISIONER_METRICS_PORT`` up that answer, as ``worker --processes N`` numbers them);
- each DC: reachable, and the bootstrap in place.

A cron job or a probe uses the exit code; ``--json`` prints one object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from workers.broker import topology
from workers.broker.connection import BrokerError
from workers.broker.connection import parameters as broker_parameters
from workers.broker.dead_letter_queue import DeadLetterQueue
from workers.cli.common import EXIT_FAILURE, say
from workers.directory.ldap_directory import LdapDirectory
from workers.directory.port import DirectoryRefused, DirectoryUnavailable
from workers.ops import bootstrap
from workers.ops.fleet_status import (
    BOOTSTRAPPED,
    Dc,
    Queue,
    Status,
    Worker,
    problems,
    read_worker,
)
from workers.provisioning.realm import read_realm
from workers.runtime.settings import DomainController, Settings

SCAN = 16  # ports tried from the metrics port when no --worker is given


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "status", help="the fleet on one screen; exit 1 when something is wrong"
    )
    parser.set_defaults(handler=run)
    parser.add_argument(
        "--worker",
        action="append",
        metavar="URL",
        help="a worker's endpoint, http://host:port (repeat it); default: the ports from "
        f"PROVISIONER_METRICS_PORT up ({SCAN}) on loopback that answer",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")


def gather(settings: Settings, workers: list[str] | None) -> Status:
    status = Status(topology.WORK_QUEUE, topology.DEAD_LETTER_QUEUE)
    names = [
        topology.WORK_QUEUE,
        *topology.retry_tier_queues(settings.retry_policy),
        topology.DEAD_LETTER_QUEUE,
    ]
    try:
        broker = broker_parameters(settings)
        depth = topology.depths(broker, names)
        status.queues = [Queue(n, *(depth[n] or (None, None))) for n in names]
        if depth[topology.DEAD_LETTER_QUEUE]:
            codes = Counter(x.error_code for x in DeadLetterQueue(broker).letters())
            status.dead_letters = dict(codes)
    except (BrokerError, OSError) as exc:
        status.broker_error = repr(exc)
    if workers:
        status.workers = [read_worker(u) or Worker(u, live=False, ready=False) for u in workers]
    elif settings.metrics_port:
        urls = [f"http://127.0.0.1:{settings.metrics_port + k}" for k in range(SCAN)]
        status.workers = [w for w in map(read_worker, urls) if w is not None]
    status.dcs = [_dc(settings, dc) for dc in settings.domain_controllers]
    return status


def _dc(settings: Settings, dc: DomainController) -> Dc:
    try:
        with LdapDirectory.connect(settings, dc) as directory:
            bootstrap.check(directory, read_realm(directory, settings.ldap_bind_dn))
    except DirectoryUnavailable as exc:
        return Dc(dc.name, reachable=False, detail=f"unreachable: {exc}")
    except (bootstrap.BootstrapError, DirectoryRefused) as exc:
        return Dc(dc.name, reachable=True, detail=str(exc))
    return Dc(dc.name, reachable=True, detail=BOOTSTRAPPED)


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f"{moment:%Y-%m-%d %H:%M:%S} ({(now - moment).total_seconds():.0f} s ago)"


def render(status: Status, found: list[str]) -> None:
    now = datetime.now(UTC)
    if status.broker_error:
        say(f"broker: does not answer ({status.broker_error})")
    else:
        say(f"{'QUEUE':<34} {'MESSAGES':>8} {'CONSUMERS':>9}")
        for q in status.queues:
            shown = ("missing", "-") if q.messages is None else (q.messages, q.consumers)
            say(f"{q.name:<34} {shown[0]:>8} {shown[1]:>9}")
    codes = ", ".join(f"{c} {n}" for c, n in sorted(status.dead_letters.items())) or "none"
    say(f"\ndead letters by code: {codes}")
    say(
        f"\n{'WORKER':<24} {'LIVE':<5} {'READY':<5} {'IN FLIGHT':>9} {'PROCESSED':>9}  LAST SUCCESS"
    )
    for w in status.workers:
        say(
            f"{w.url.removeprefix('http://'):<24} {'yes' if w.live else 'NO':<5} "
            f"{'yes' if w.ready else 'NO':<5} {w.in_flight:>9.0f} {w.processed:>9.0f}  "
            f"{_when(w.last_success, now)}"
        )
    if not status.workers:
        say("(none answers)")
    say("")
    for dc in status.dcs:
        say(f"DC {dc.name}: {dc.detail}")
    say("")
    say("status: ok" if not found else "status: PROBLEMS")
    for line in found:
        say(f"- {line}")


def run(settings: Settings, args: argparse.Namespace) -> int:
    status = gather(settings, args.worker)
    found = problems(status)
    if args.json:
        record = dataclasses.asdict(status)
        record["problems"] = found
        say(json.dumps(record, default=str, sort_keys=True))
    else:
        render(status, found)
    return EXIT_FAILURE if found else 0
