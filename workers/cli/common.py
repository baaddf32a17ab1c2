"""What the command groups share: exit codes, the refusal of unusable input, output that
ends quietly when its reader goes away, an administrator's credential for one command,
and the reading of ``TYPE --data JSON``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

from nacl.public import PublicKey

from messages import sealing
from messages.envelope import Envelope
from messages.errors import ContractError
from messages.json_input import envelope_from_json
from workers.runtime.settings import Settings, SettingsError

EXIT_FAILURE = 1
EXIT_USAGE = 2


class Refused(Exception):
    """A command's input that cannot be used: a message for the user, and the exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def say(text: str = "") -> None:
    """``print`` to standard output, except that a reader who went away (``| head``) ends
    the output quietly: the rest goes nowhere, and the command carries on to its end (a
    replay is not cut in half because its listing was)."""
    try:
        print(text)
    except BrokenPipeError:
        silence_stdout()


def silence_stdout() -> None:
    """Standard output to /dev/null from now on (Python's advice after EPIPE, so that the
    flush at exit does not fail again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def admin_options(parser: argparse.ArgumentParser) -> None:
    """An administrator's credential for this one command, never stored for the fleet."""
    parser.add_argument(
        "--admin-bind-dn",
        metavar="DN",
        help="bind as this administrator (a DN or UPN) for this command alone",
    )
    parser.add_argument(
        "--admin-password-file",
        type=argparse.FileType("r", encoding="utf-8"),
        metavar="FILE",
        help="the administrator's password, on the first line ('-' for standard input)",
    )


def as_admin(settings: Settings, args: argparse.Namespace) -> Settings:
    """``settings`` bound as the administrator the command was given, if any.  The realm's
    provisioner stays the fleet's own account (``PROVISIONER_LDAP_BIND_DN``)."""
    if not args.admin_bind_dn:
        return settings
    if args.admin_password_file is None:
        raise SettingsError("--admin-bind-dn needs --admin-password-file")
    with args.admin_password_file as source:
        password = source.readline().rstrip("\r\n")
    return dataclasses.replace(
        settings, ldap_bind_dn=args.admin_bind_dn, ldap_bind_password=password
    )


def public_key(settings: Settings) -> PublicKey | None:
    """The fleet's public key, that plaintext passwords are sealed to before they leave."""
    path = settings.fleet_public_key_file
    return sealing.load_public_key(path) if path else None


def event_options(parser: argparse.ArgumentParser, *, type_required: bool = True) -> None:
    """``TYPE --data JSON``: an event given on the command line."""
    parser.add_argument(
        "type",
        nargs=None if type_required else "?",
        help="event type" if type_required else "event type, with --data",
    )
    parser.add_argument("--data", required=type_required, help="the event's data as a JSON object")


def event_from_args(
    settings: Settings, args: argparse.Namespace, keys: tuple[str, ...]
) -> Envelope:
    """The envelope of ``TYPE --data JSON`` and the options ``keys``, passwords sealed."""
    line: dict[str, Any] = {"type": args.type}
    try:
        line["data"] = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise Refused(f"--data is not JSON: {exc}", EXIT_USAGE) from None
    line.update({key: getattr(args, key) for key in keys if getattr(args, key)})
    try:
        return envelope_from_json(line, public_key=public_key(settings))
    except ContractError as exc:
        raise Refused(f"invalid event: {exc}", EXIT_FAILURE) from None
