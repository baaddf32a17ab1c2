"""The one error that decoding or validating a message raises."""

from __future__ import annotations


class ContractError(ValueError):
    """A message breaks the v1 contract.

    ``code`` is machine-readable and stable (see ``docs/events.md``); ``path`` names the
    offending field (``"data.admin.username"``), or is empty for the body as a whole.
    """

    def __init__(self, code: str, message: str, path: str = "") -> None:
        super().__init__(f"{code} at {path or '<body>'}: {message}")
        self.code = code
        self.path = path
        self.message = message
