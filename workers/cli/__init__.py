"""``provisioner``, the command line: ``main`` parses and dispatches, ``dlq`` holds the
dead-letter commands."""

from workers.cli.main import main

__all__ = ["main"]
