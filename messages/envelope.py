"""The v1 envelope and its msgpack codec: one ``encode``, one ``decode``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgpack

from messages import fields
from messages.errors import ContractError
from messages.events import CATALOGUE, Event, to_wire

VERSION = 1
MAX_BODY_BYTES = 64 * 1024
_id = fields.token(128)
_idempotency_key = fields.token(255)
_source = fields.token(128)


@dataclass(frozen=True)
class Envelope:
    id: str
    idempotency_key: str
    occurred_at: datetime
    data: Event
    source: str | None = None

    @property
    def type(self) -> str:
        return self.data.TYPE

    @property
    def tenant(self) -> str:
        return self.data.tenant


def encode(envelope: Envelope) -> bytes:
    wire: dict[str, Any] = {
        "v": VERSION,
        "id": envelope.id,
        "type": envelope.type,
        "idempotency_key": envelope.idempotency_key,
        "occurred_at": fields.format_timestamp(envelope.occurred_at),
        "data": to_wire(envelope.data),
    }
    if envelope.source is not None:
        wire["source"] = envelope.source
    body: bytes = msgpack.packb(wire, use_bin_type=True)
    return body


def decode(body: bytes) -> Envelope:
    """Decode and validate one message body; every failure is a :class:`ContractError`."""
    if len(body) > MAX_BODY_BYTES:
        raise ContractError("body_too_large", f"{len(body)} bytes, limit {MAX_BODY_BYTES}")
    try:
        raw = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types
        raise ContractError("malformed_msgpack", f"not a msgpack value: {exc}") from None
    return from_wire(raw)


def from_wire(raw: object) -> Envelope:
    """Validate an already unpacked body (a msgpack map, or the same shape from JSON)."""
    if not isinstance(raw, dict):
        raise ContractError("not_a_map", "the body must be a msgpack map")
    reader = fields.FieldReader(raw, "")
    version = reader.integer("v", 0, 2**31)
    if version != VERSION:
        raise ContractError("unknown_version", f"version {version} is not supported", "v")
    type_ = reader.string("type", fields.token(64))
    event_class = CATALOGUE.get(type_)
    if event_class is None:
        raise ContractError("unknown_type", f"unknown event type {type_!r}", "type")
    envelope = Envelope(
        id=reader.string("id", _id),
        idempotency_key=reader.string("idempotency_key", _idempotency_key),
        occurred_at=reader.string("occurred_at", fields.timestamp),
        source=reader.optional_string("source", _source),
        data=event_class.parse(reader.nested("data")),
    )
    reader.done()
    return envelope
