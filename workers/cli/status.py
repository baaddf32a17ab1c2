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
from datetime import UTC, datetime
from typing import Any

from workers.cli.common import EXIT_FAILURE, say
from workers.console import status_reading
from workers.ops.fleet_status import Status, problems
from workers.runtime.settings import Settings


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
        f"PROVISIONER_METRICS_PORT up ({status_reading.SCAN}) on loopback that answer",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")


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
    status = status_reading.gather(settings, args.worker)
    found = problems(status)
    if args.json:
        record = dataclasses.asdict(status)
        record["problems"] = found
        say(json.dumps(record, default=str, sort_keys=True))
    else:
        render(status, found)
    return EXIT_FAILURE if found else 0
