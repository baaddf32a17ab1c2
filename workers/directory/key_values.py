"""The ``key=value`` format of the multi-valued string attributes the fleet keeps its own
facts in (``msDS-Settings`` of a tenant's settings object and of an idempotency record).

A key may repeat (``reserved=alice``, ``reserved=bob``); a value is everything after the
first ``=``, so it may hold ``=`` itself.  Every reader and writer of the format goes
through here.  Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ATTRIBUTE = "msDS-Settings"


def item(key: str, value: object) -> str:
    return f"{key}={value}"


def items(pairs: Mapping[str, object]) -> list[str]:
    return [item(key, value) for key, value in pairs.items()]


def pairs(values: Iterable[object]) -> list[tuple[str, str]]:
    """(key, value) of every stored value, in order."""
    out = []
    for raw in values:
        key, _, value = str(raw).partition("=")
        out.append((key, value))
    return out


def single(values: Iterable[object]) -> dict[str, str]:
    """The keys that hold one value each (the last, where one repeats)."""
    return dict(pairs(values))


def all_of(values: Iterable[object], key: str) -> list[str]:
    """Every value of a repeated key, in order."""
    return [value for k, value in pairs(values) if k == key]
