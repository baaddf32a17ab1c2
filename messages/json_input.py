"""Producer input as JSON: one event per JSON object (``provisioner publish``).

A line holds ``type`` and ``data``, and optionally ``id``, ``idempotency_key``,
``occurred_at`` and ``source``.  Missing ``id`` and ``occurred_at`` are filled in; a
missing ``idempotency_key`` becomes the message id, so only a producer that supplies
its own key can retry an intent safely.  The result is validated by the same rules as
a received message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Any

from messages import fields
from messages.envelope import VERSION, Envelope, from_wire
from messages.errors import ContractError

_ALLOWED = frozenset({"type", "data", "id", "idempotency_key", "occurred_at", "source"})


def envelope_from_json(
    obj: object,
    *,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Envelope:
    if not isinstance(obj, dict):
        raise ContractError("not_a_map", "each input line must be a JSON object")
    unknown = sorted(set(obj) - _ALLOWED)
    if unknown:
        raise ContractError("unknown_field", "unknown field", unknown[0])
    wire: dict[str, Any] = {"v": VERSION, **obj}
    wire.setdefault("id", new_id())
    wire.setdefault("idempotency_key", wire["id"])
    wire.setdefault("occurred_at", fields.format_timestamp(now()))
    return from_wire(wire)


def read_lines(stream: IO[str]) -> Iterator[tuple[int, Envelope | ContractError]]:
    """(line number, envelope or the error that line has) for each non-blank line."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, ContractError("malformed_json", str(exc))
            continue
        try:
            yield number, envelope_from_json(obj)
        except ContractError as exc:
            yield number, exc
