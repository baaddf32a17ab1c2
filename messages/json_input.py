"""Producer input as JSON: one event per JSON object (``provisioner publish``).

A line holds ``type`` and ``data``, and optionally ``id``, ``idempotency_key``,
``occurred_at`` and ``source``.  A ``password`` is given in plaintext here and sealed
to the fleet's public key before anything is encoded: the plaintext never reaches the
broker.  Missing ``id`` and ``occurred_at`` are filled in; a
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

from nacl.public import PublicKey

from messages import fields
from messages.envelope import VERSION, Envelope, from_wire
from messages.errors import ContractError
from messages.sealing import seal

_ALLOWED = frozenset({"type", "data", "id", "idempotency_key", "occurred_at", "source"})


def envelope_from_json(
    obj: object,
    *,
    public_key: PublicKey | None = None,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Envelope:
    if not isinstance(obj, dict):
        raise ContractError("not_a_map", "each input line must be a JSON object")
    unknown = sorted(set(obj) - _ALLOWED)
    if unknown:
        raise ContractError("unknown_field", "unknown field", unknown[0])
    wire: dict[str, Any] = {"v": VERSION, **obj}
    if isinstance(obj.get("data"), dict):
        wire["data"] = _sealed_passwords(obj["data"], public_key, "data")
    wire.setdefault("id", new_id())
    wire.setdefault("idempotency_key", wire["id"])
    wire.setdefault("occurred_at", fields.format_timestamp(now()))
    return from_wire(wire)


def _sealed_passwords(data: dict[str, Any], public_key: PublicKey | None, path: str) -> Any:
    """``data`` with every plaintext ``password`` (at any depth) replaced by its sealed box."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        here = f"{path}.{key}"
        if isinstance(value, dict):
            out[key] = _sealed_passwords(value, public_key, here)
        elif key == "password" and isinstance(value, str):
            if public_key is None:
                raise ContractError(
                    "no_public_key",
                    "a password needs the fleet's public key (PROVISIONER_FLEET_PUBLIC_KEY_FILE)",
                    here,
                )
            fields.reject_control_characters(value, here)
            out[key] = seal(value, public_key)
        else:
            out[key] = value
    return out


def read_lines(
    stream: IO[str], public_key: PublicKey | None = None
) -> Iterator[tuple[int, Envelope | ContractError]]:
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
            yield number, envelope_from_json(obj, public_key=public_key)
        except ContractError as exc:
            yield number, exc
