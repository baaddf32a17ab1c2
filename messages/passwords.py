"""Where passwords sit in a message, and the one walk over them.

Every field named ``password``, at any depth (``data.password``, ``data.admin.password``),
is a password: sealed (``bin``) when the producer followed the contract, a ``str`` when it
erred.  Hashing an intent, storing a dead letter, showing one and naming the key a box
was sealed to all go through :func:`replace_passwords`; a failed line written back to
its producer, through :func:`drop_passwords`.  Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FIELD = "password"


def replace_passwords(value: Any, replace: Callable[[str, Any], Any], path: str = "") -> Any:
    """``value`` (decoded msgpack or JSON) with each password replaced by
    ``replace(path, password)``; everything else is copied as it is."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            out[key] = (
                replace(where, item) if key == FIELD else replace_passwords(item, replace, where)
            )
        return out
    if isinstance(value, list):
        return [replace_passwords(item, replace, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def passwords(value: Any) -> list[tuple[str, Any]]:
    """(path, password) of every password in ``value``, in order."""
    found: list[tuple[str, Any]] = []

    def note(path: str, item: Any) -> Any:
        found.append((path, item))
        return item

    replace_passwords(value, note)
    return found


def drop_passwords(value: Any) -> Any:
    """``value`` with every password field left out (a line written back for a person to
    fix, which must hold no secret)."""
    if isinstance(value, dict):
        return {k: drop_passwords(v) for k, v in value.items() if k != FIELD}
    if isinstance(value, list):
        return [drop_passwords(item) for item in value]
    return value
