"""``provisioner settings``: every setting, its variable and its value."""

from __future__ import annotations

import argparse
from typing import Any

from workers.runtime.settings import Settings


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("settings", help="print every setting with its variable and value")
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    del args
    for variable, value, doc in settings.describe():
        print(f"{variable}={value}\n    {doc}")
    return 0
