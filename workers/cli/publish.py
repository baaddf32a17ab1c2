"""``provisioner publish --file F | TYPE --data J``: events to the broker, each confirmed;
a plaintext password is sealed to the fleet's key before it leaves the process."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from messages import publisher
from messages.envelope import Envelope
from messages.errors import ContractError
from messages.json_input import read_lines
from messages.publisher import PublishReport
from workers.broker import connection
from workers.cli import publish_wait
from workers.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    event_from_args,
    event_options,
    public_key,
)
from workers.runtime.settings import Settings


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("publish", help="publish events (confirmed)")
    parser.set_defaults(handler=run)
    event_options(parser, type_required=False)
    parser.add_argument("--idempotency-key")
    parser.add_argument("--source")
    parser.add_argument(
        "--file",
        type=argparse.FileType("r", encoding="utf-8"),
        help="JSON Lines, one event per line ('-' for stdin)",
    )
    publish_wait.add_options(parser)


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.file is not None:
        if args.type or args.data:
            print("provisioner: give either --file or TYPE --data", file=sys.stderr)
            return EXIT_USAGE
        if args.wait:
            return publish_wait.run(settings, args)
        return _publish_lines(settings, args.file)
    if args.wait:
        print("provisioner: --wait goes with --file", file=sys.stderr)
        return EXIT_USAGE
    if not args.type or args.data is None:
        print("provisioner: publish needs TYPE --data JSON, or --file", file=sys.stderr)
        return EXIT_USAGE
    envelope = event_from_args(settings, args, ("idempotency_key", "source"))
    publisher.publish(connection.parameters(settings), envelope)
    print(f"confirmed {envelope.type} id={envelope.id}")
    return 0


def _publish_lines(settings: Settings, stream: IO[str]) -> int:
    """Publish a JSON Lines stream; invalid lines are reported and never sent."""
    invalid: list[tuple[int, str]] = []

    def valid_lines() -> Iterator[tuple[int, Envelope]]:
        for number, item in read_lines(stream, public_key(settings)):
            if isinstance(item, ContractError):
                invalid.append((number, f"invalid: {item}"))
            else:
                yield number, item

    progress = _Progress(sys.stderr)
    report = publisher.publish_all(
        connection.parameters(settings), valid_lines(), on_progress=progress.show
    )
    progress.clear()
    failures = sorted(invalid + report.failed)
    for number, reason in failures:
        print(f"line {number}: {reason}", file=sys.stderr)
    print(f"sent {report.sent}, confirmed {len(report.confirmed)}, failed {len(failures)}")
    return EXIT_FAILURE if failures else 0


class _Progress:
    """A one-line counter on a terminal; silent otherwise."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last = 0.0

    def show(self, report: PublishReport[int]) -> None:
        now = time.monotonic()
        if self._tty and now - self._last > 0.1:
            self._last = now
            self._stream.write(f"\rconfirmed {len(report.confirmed)}, failed {len(report.failed)}")
            self._stream.flush()

    def clear(self) -> None:
        if self._tty:
            self._stream.write("\r\033[K")
            self._stream.flush()
