"""The fleet's errors, under one root: each carries a stable ``code`` (docs/engine.md lists
them) and says whether trying the same message again later may succeed.

:func:`classify` is the one place that turns any exception into (code, transient); the
delivery layer decides retries and dead letters from it, nothing else.  The message
contract's own error (``messages.errors.ContractError``) stands outside the fleet, and is
classified here too: permanent, with its code.
"""

from __future__ import annotations

from typing import ClassVar

from messages.errors import ContractError


class FleetError(Exception):
    """The root: a ``code``, and whether it is ``transient``."""

    transient: ClassVar[bool] = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PermanentError(FleetError):
    """The event cannot succeed as it stands."""


class TransientError(FleetError):
    """Not now, maybe later: the message is retried after a delay."""

    transient = True


class DependencyNotReady(TransientError):
    """What the event needs is not there yet (a user before its tenant)."""


class RollbackIncomplete(PermanentError):
    """A failed job could not be undone completely; ``leftovers`` names what remains."""

    def __init__(self, cause: Exception, leftovers: list[str]) -> None:
        super().__init__(
            "rollback_incomplete",
            f"{cause}; rollback left behind: {'; '.join(leftovers)}",
        )
        self.cause = cause
        self.leftovers = leftovers


def classify(exc: BaseException) -> tuple[str, bool] | None:
    """(code, transient) of an error the fleet knows; None for anything else (a bug)."""
    if isinstance(exc, FleetError):
        return exc.code, exc.transient
    if isinstance(exc, ContractError):
        return exc.code, False
    return None
