"""The engine's errors: what makes a job fail for good, and what a rollback left behind."""

from __future__ import annotations


class PermanentError(Exception):
    """The event cannot succeed as it stands; ``code`` says why (see docs/engine.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RollbackIncomplete(PermanentError):
    """A failed job could not be undone completely; ``leftovers`` names what remains."""

    def __init__(self, cause: Exception, leftovers: list[str]) -> None:
        super().__init__(
            "rollback_incomplete",
            f"{cause}; rollback left behind: {'; '.join(leftovers)}",
        )
        self.cause = cause
        self.leftovers = leftovers


class DependencyNotReady(Exception):
    """What the event needs is not there yet (a user before its tenant): retry later."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
