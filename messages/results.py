"""Result events: what the fleet publishes to ``provisioning.results`` for every attempt.

The routing key is ``<event type>.<outcome>`` (``unknown.dead_lettered`` for a body
that did not decode); the body is a msgpack map.  A result is confirmed by the broker
before the event it answers is acked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgpack

from messages.errors import ContractError
from messages.fields import format_timestamp

RESULTS_EXCHANGE = "provisioning.results"
UNKNOWN_TYPE = "unknown"
VERSION = 1


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"  # the effect is in place (again, for a redelivery)
    DUPLICATE = "duplicate"  # another message already applied this idempotency key
    RETRY_SCHEDULED = "retry_scheduled"  # a transient failure; tried again later
    DEAD_LETTERED = "dead_lettered"  # in the dead-letter queue; error says why


@dataclass(frozen=True)
class ResultError:
    code: str
    message: str


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    event_type: str
    in_reply_to: str | None
    idempotency_key: str | None
    attempt: int
    details: dict[str, Any] = field(default_factory=dict)
    error: ResultError | None = None
    producer: str | None = None  # the broker user who published the event (its user_id)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def routing_key(self) -> str:
        return f"{self.event_type}.{self.outcome}"


def encode_result(result: Result) -> bytes:
    wire: dict[str, Any] = {
        "v": VERSION,
        "outcome": result.outcome.value,
        "event_type": result.event_type,
        "in_reply_to": result.in_reply_to,
        "idempotency_key": result.idempotency_key,
        "attempt": result.attempt,
        "producer": result.producer,
        "details": result.details,
        "occurred_at": format_timestamp(result.occurred_at),
    }
    if result.error is not None:
        wire["error"] = {"code": result.error.code, "message": result.error.message}
    body: bytes = msgpack.packb(wire, use_bin_type=True)
    return body


def decode_result(body: bytes) -> Result:
    """For consumers of results (billing, tests); raises :class:`ContractError`."""
    try:
        raw = msgpack.unpackb(body, raw=False)
        error = raw.get("error")
        return Result(
            outcome=Outcome(raw["outcome"]),
            event_type=raw["event_type"],
            in_reply_to=raw["in_reply_to"],
            idempotency_key=raw["idempotency_key"],
            attempt=int(raw["attempt"]),
            details=dict(raw["details"]),
            error=None if error is None else ResultError(error["code"], error["message"]),
            producer=raw.get("producer"),
            occurred_at=datetime.fromisoformat(raw["occurred_at"]),
        )
    except Exception as exc:  # noqa: BLE001 - any shape error is the one contract error
        raise ContractError("malformed_result", f"not a v1 result event: {exc!r}") from None
