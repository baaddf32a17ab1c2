"""``provisioner keys generate | init | rotate | retire | list``: a key pair for the results
consumer, and the fleet's key ring (rotation with no downtime)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from messages import sealing
from workers.runtime import key_ring
from workers.runtime.settings import Settings, SettingsError

RING_ACTIONS = {
    "init": "make the key ring, with a current key, unless it has one",
    "rotate": "a new current key; the old one stays accepted until retired",
    "retire": "stop accepting previous keys (all of them, or those named)",
    "list": "the keys: current, previous, retired",
}


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("keys", help="password-sealing keys")
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="action", required=True)
    generate = actions.add_parser("generate", help="write a key pair unless both files exist")
    generate.add_argument("--public", required=True, type=Path)
    generate.add_argument("--private", required=True, type=Path)
    for name, text in RING_ACTIONS.items():
        action = actions.add_parser(name, help=text)
        action.add_argument("--dir", help="the key ring (default: PROVISIONER_FLEET_KEY_DIR)")
        if name == "init":
            action.add_argument(
                "--adopt", metavar="PRIVATE_KEY_FILE", help="make this key the first one"
            )
        if name == "retire":
            action.add_argument("fingerprints", nargs="*", metavar="FINGERPRINT")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "generate":
        if sealing.generate_key_pair(args.public, args.private):
            print(f"wrote {args.public} and {args.private} (mode 0600)")
        else:
            print("key pair exists; nothing written")
        return 0
    directory = args.dir or settings.fleet_key_dir
    if not directory:
        raise SettingsError("give --dir or set PROVISIONER_FLEET_KEY_DIR")
    if args.action == "init":
        made = key_ring.init(directory, args.adopt)
        print(f"key ring {directory}: " + (f"current key {made}" if made else "exists"))
    elif args.action == "rotate":
        new, old = key_ring.rotate(directory)
        print(f"current key {new}; {old or 'no key'} stays accepted until retired")
    elif args.action == "retire":
        retired = key_ring.retire(directory, args.fingerprints or None)
        for fp in retired:
            print(f"retired {fp}")
        print(f"{len(retired)} key(s) retired")
    else:
        for info in key_ring.KeyRing.load(directory).listing():
            print(f"{info.fingerprint}\t{info.state}\tsince {info.since:%Y-%m-%d %H:%M:%S}Z")
    return 0
