"""``provisioner dlq``: find, understand, replay and discard dead letters.

    provisioner dlq list [filters] [--group-by error]
    provisioner dlq show ID
    provisioner dlq replay (ID... | filters | --all) [--dry-run] [--rate N]
    provisioner dlq discard (ID... | filters | --all) [--yes]
    provisioner dlq export [ID... | filters] [--file F]
    provisioner dlq import --file F

An ID is a dead letter's own id (the worker's ``message.dead_lettered`` log line and the
``dead_lettered`` result event carry it), the message id the producer logged, or the
idempotency key.  An ID that matches no dead letter is an error (exit 1, naming it);
filters that match nothing say so and exit 0.  Filters: ``--type``, ``--tenant``,
``--error``, ``--since``, ``--until`` (ISO times, matched against the last failure).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from workers.broker.connection import parameters as broker_parameters
from workers.broker.dead_letter_queue import DeadLetterQueue, export_line, import_lines
from workers.cli.common import EXIT_FAILURE, EXIT_USAGE, say
from workers.console import dead_letters
from workers.ops.dead_letter_view import (
    DeadLetter,
    Filter,
    as_record,
    groups,
    iso_time,
    redacted_body,
    sealed_passwords,
)
from workers.runtime import key_ring
from workers.runtime.settings import Settings

NO_MATCH = "no dead letter matches"


def add_parser(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="dead letters: list, show, replay, discard, export")
    dlq.set_defaults(handler=run)
    actions = dlq.add_subparsers(dest="action", required=True)

    def selection(parser: argparse.ArgumentParser, *, all_flag: bool = True) -> None:
        parser.add_argument(
            "ids",
            nargs="*",
            metavar="ID",
            help="dead-letter ids, message ids or idempotency keys",
        )
        parser.add_argument("--type")
        parser.add_argument("--tenant")
        parser.add_argument("--error", help="error code")
        parser.add_argument("--since", type=_moment, help="last failure at or after (ISO)")
        parser.add_argument("--until", type=_moment, help="last failure at or before (ISO)")
        if all_flag:
            parser.add_argument("--all", action="store_true", dest="everything")

    listing = actions.add_parser("list", help="a table of the dead letters")
    selection(listing, all_flag=False)
    listing.add_argument("--group-by", choices=["error"])
    listing.add_argument("--json", action="store_true", help="JSON Lines: one object a letter")
    show = actions.add_parser("show", help="one dead letter, decoded, passwords redacted")
    show.add_argument("id", help="its dead-letter id, message id or idempotency key")
    show.add_argument("--json", action="store_true", help="JSON Lines: one object a letter")
    replay = actions.add_parser("replay", help="back into the work queue, confirmed")
    selection(replay)
    replay.add_argument(
        "--dry-run", action="store_true", help="print what each would do to the directory now"
    )
    replay.add_argument(
        "--rate", type=rate, metavar="N/s", help="at most N messages a second (20 or 20/s)"
    )
    discard = actions.add_parser("discard", help="delete dead letters")
    selection(discard)
    discard.add_argument("--yes", action="store_true", help="do not ask")
    export = actions.add_parser("export", help="JSON Lines; the dead letters stay")
    selection(export, all_flag=False)
    export.add_argument("--file", type=argparse.FileType("w", encoding="utf-8"), default="-")
    importing = actions.add_parser("import", help="JSON Lines from export, into the queue")
    importing.add_argument("--file", type=argparse.FileType("r", encoding="utf-8"), required=True)


def rate(text: str) -> float:
    """``20`` or ``20/s``: messages a second."""
    number = text.removesuffix("/s")
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate like 20/s") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("a rate must be positive")
    return value


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _filter(args: argparse.Namespace) -> Filter:
    return Filter(
        ids=frozenset(getattr(args, "ids", []) or []),
        type=args.type,
        tenant=args.tenant,
        error=args.error,
        since=args.since,
        until=args.until,
        everything=getattr(args, "everything", False),
    )


def run(settings: Settings, args: argparse.Namespace, ask: Callable[[str], str] = input) -> int:
    queue = DeadLetterQueue(broker_parameters(settings))
    names = [args.id] if args.action == "show" else list(getattr(args, "ids", []) or [])
    known: list[DeadLetter] = []
    if names:
        known = list(queue.letters())
        unknown = Filter(ids=frozenset(names)).unmatched(known)
        if unknown:
            print(f"provisioner: no dead letter is known as {', '.join(unknown)}", file=sys.stderr)
            return EXIT_FAILURE
    reading: dict[str, Callable[[], int]] = {
        "list": lambda: _list(queue, _filter(args), args.group_by, as_json=args.json),
        "show": lambda: _show(known, args.id, settings, as_json=args.json),
        "export": lambda: _export(queue, _filter(args), args.file),
        "import": lambda: _import(settings, args.file),
    }
    if args.action in reading:
        return reading[args.action]()
    chosen = _filter(args)
    if chosen.empty():
        print("provisioner: name dead letters by id, by filter, or --all", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "discard":
        return _discard(queue, chosen, args.yes, ask)
    if args.dry_run:
        return _dry_run(queue, chosen, settings)
    return _replay(queue, chosen, args.rate)


def _import(settings: Settings, stream: IO[str]) -> int:
    say(f"imported {import_lines(broker_parameters(settings), stream)} dead letter(s)")
    return 0


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _json(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str, sort_keys=True)


def _list(queue: DeadLetterQueue, chosen: Filter, group_by: str | None, *, as_json: bool) -> int:
    now = datetime.now(UTC)
    if as_json:
        return _list_json(queue, chosen, group_by)
    if group_by == "error":
        say(f"{'ERROR':<24} {'COUNT':>6}  {'FIRST SEEN':<19}  {'LAST SEEN':<19}")
        for group in groups(dead_letters.chosen(queue, chosen)):
            say(
                f"{group.error_code:<24} {group.count:>6}  {_when(group.first_seen):<19}  "
                f"{_when(group.last_seen):<19}"
            )
        return 0
    say(
        f"{'ID':<36} {'TYPE':<20} {'TENANT':<20} {'ERROR':<22} {'TRIES':>5}  "
        f"{'FIRST FAILURE':<19}  {'LAST FAILURE':<19}  {'AGE':>5}"
    )
    shown = 0
    for letter in queue.letters():
        if chosen.matches(letter):
            shown += 1
            say(
                f"{letter.id:<36} {letter.type:<20} {letter.tenant or '-':<20} "
                f"{letter.error_code:<22} {letter.attempts:>5}  "
                f"{_when(letter.first_failure):<19}  {_when(letter.last_failure):<19}  "
                f"{_age(letter.age_seconds(now)):>5}"
            )
    # An empty queue is "0 dead letter(s)"; filters that match nothing say so.
    say(f"{shown} dead letter(s)" if shown or chosen.empty() else NO_MATCH)
    return 0


def _list_json(queue: DeadLetterQueue, chosen: Filter, group_by: str | None) -> int:
    """One object a letter (or a group); nothing at all when nothing matches."""
    letters = dead_letters.chosen(queue, chosen)
    if group_by != "error":
        for letter in letters:
            say(_json(as_record(letter)))
        return 0
    for group in groups(letters):
        say(
            _json(
                {
                    "error_code": group.error_code,
                    "count": group.count,
                    "first_seen": iso_time(group.first_seen),
                    "last_seen": iso_time(group.last_seen),
                }
            )
        )
    return 0


def _show(
    letters: list[DeadLetter], name: str, settings: Settings, *, as_json: bool = False
) -> int:
    """Every dead letter known as ``name`` (a republished intent may be there twice);
    ``letters``: the queue as read to check the name."""
    found = [x for x in letters if x.known_as(name)]
    for index, letter in enumerate(found):
        if as_json:
            say(_json(as_record(letter, whole=True)))
            continue
        if index:
            say()
        _show_one(letter, settings)
    return 0


def _show_one(letter: DeadLetter, settings: Settings) -> None:
    history = letter.headers.get("x-attempts", [])
    say(f"id:             {letter.id}")
    say(f"type:           {letter.type}  (routing key {letter.routing_key})")
    say(f"tenant:         {letter.tenant or '-'}")
    say(f"message id:     {letter.message_id or '-'}")
    say(f"idempotency key: {letter.idempotency_key or '-'}")
    say(f"producer:       {letter.producer or '- (no user_id)'}")
    say(f"error:          {letter.error_code}: {letter.error_message}")
    say(f"first failure:  {_when(letter.first_failure)}")
    say(f"last failure:   {_when(letter.last_failure)}")
    say(f"replays:        {letter.replays}")
    redacted = letter.headers.get("x-redacted")
    if redacted:
        fields = ", ".join(str(f) for f in redacted)
        say(f"redacted:       {fields} (sent in plaintext; removed before storing)")
    _show_sealing(letter, settings)
    say("attempts:")
    for attempt in history:
        say(
            f"  {attempt.get('attempt')}. {attempt.get('at')}  {attempt.get('code')}  "
            f"on {attempt.get('worker')}"
        )
    traceback = letter.headers.get("x-traceback")
    if traceback:
        say("traceback:")
        say("  " + str(traceback).replace("\n", "\n  "))
    say("message (passwords redacted):")
    say(json.dumps(redacted_body(letter.body), indent=2, ensure_ascii=False, default=str))


def _show_sealing(letter: DeadLetter, settings: Settings) -> None:
    """Which of the fleet's keys each sealed password is sealed to (a key retired since
    it was sent is named: such a letter cannot succeed until it is sealed again)."""
    boxes = sealed_passwords(letter.body)
    if not boxes:
        return
    ring = key_ring.KeyRing.load(settings.fleet_key_dir) if settings.fleet_key_dir else None
    for path, box in boxes:
        if ring is None:
            said = "sealed (PROVISIONER_FLEET_KEY_DIR not set: key not checked)"
        else:
            state, fp = ring.state_of(box)
            said = {
                "current": f"sealed to the current key {fp}",
                "previous": f"sealed to the previous key {fp} (still accepted)",
                "retired": f"sealed to the RETIRED key {fp}: it cannot succeed; the producer "
                "must seal it again to the current key",
                "unknown": "sealed to no key of the fleet's",
            }[state]
        say(f"password:       {path}: {said}")


def _replay(queue: DeadLetterQueue, chosen: Filter, rate: float | None) -> int:
    def said(letter: DeadLetter) -> None:
        say(f"replayed {letter.id} ({letter.type})")

    replayed = dead_letters.replay(queue, chosen, rate, said)
    say(f"replayed {replayed} dead letter(s)" if replayed else NO_MATCH)
    return 0


def _dry_run(queue: DeadLetterQueue, chosen: Filter, settings: Settings) -> int:
    previews = dead_letters.preview(dead_letters.chosen(queue, chosen), settings)
    if not previews:
        say(NO_MATCH)
        return 0
    for shown in previews:
        say(f"{shown.letter.id}:")
        for text in shown.lines:
            say(f"  {text}")
    return 0


def _discard(queue: DeadLetterQueue, chosen: Filter, yes: bool, ask: Callable[[str], str]) -> int:
    ids = {x.id for x in dead_letters.chosen(queue, chosen)}
    if not ids:
        say(NO_MATCH)
        return 0
    if not yes and ask(f"Discard {len(ids)} dead letter(s)? [y/N] ").strip().lower() != "y":
        say("nothing discarded")
        return EXIT_FAILURE
    say(f"discarded {dead_letters.discard(queue, ids)} dead letter(s)")
    return 0


def _export(queue: DeadLetterQueue, chosen: Filter, out: IO[str]) -> int:
    exported = 0
    with queue.pass_over() as (_, held):
        for item in held:
            if chosen.empty() or chosen.matches(item.letter):
                out.write(export_line(item) + "\n")
                exported += 1
    out.flush()
    print(f"exported {exported} dead letter(s)", file=sys.stderr)
    return 0
