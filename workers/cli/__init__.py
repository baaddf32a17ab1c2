"""``provisioner``, the command line: ``main`` parses and dispatches; each command group is a
module of its own (``settings``, ``topology``, ``directory``, ``publish``, ``plan``,
``dlq``, ``audit``, ``records``, ``keys``, ``worker``) holding its options beside its
handler; ``common`` holds what they share."""

from workers.cli.main import main

__all__ = ["main"]
