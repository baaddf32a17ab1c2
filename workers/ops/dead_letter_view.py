"""A dead letter as an operator sees it; pure.

:func:`view` turns one message of the dead-letter queue (routing key, properties' fields,
headers, body) into a :class:`DeadLetter`: its stable id, type, tenant, error, attempts
and failure times.  Messages the fleet dead-lettered carry all that in headers; messages
the broker dead-lettered on its own (at the delivery limit) carry only ``x-death``, and
are reported with the code ``delivery_limit`` and an id derived from the message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgpack

from messages.envelope import decode
from messages.errors import ContractError
from messages.passwords import passwords, replace_passwords

REDACTED = "[sealed password, not shown]"


@dataclass(frozen=True)
class DeadLetter:
    id: str
    type: str
    tenant: str | None
    error_code: str
    error_message: str
    attempts: int
    first_failure: datetime | None
    last_failure: datetime | None
    routing_key: str
    message_id: str | None
    replays: int
    headers: Mapping[str, Any] = field(repr=False)
    body: bytes = field(repr=False)
    producer: str | None = None  # its user_id: the broker user who published it
    idempotency_key: str | None = None  # when the body decodes far enough to say

    def known_as(self, name: str) -> bool:
        """Whether an operator may mean this letter by ``name``: its dead-letter id, its
        message id (the producer's log), or its idempotency key (the order's)."""
        return name in {self.id, self.message_id, self.idempotency_key}

    def age_seconds(self, now: datetime) -> float | None:
        return None if self.last_failure is None else (now - self.last_failure).total_seconds()


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def view(
    routing_key: str,
    message_id: str | None,
    headers: Mapping[str, Any] | None,
    body: bytes,
    producer: str | None = None,
) -> DeadLetter:
    h = dict(headers or {})
    deaths = [d for d in h.get("x-death", []) if isinstance(d, Mapping)]
    event_type, tenant, key = _peek(body)
    original_key = _text(h.get("x-original-routing-key", routing_key))
    if "x-error-code" in h:
        code, message = _text(h["x-error-code"]), _text(h.get("x-error-message", ""))
        dead_letter_id = _text(h.get("x-dead-letter-id", ""))
    else:  # dead-lettered by the broker itself
        reason = _text(deaths[0].get("reason", "rejected")) if deaths else "rejected"
        code = "delivery_limit" if reason == "delivery_limit" else reason
        message = f"dead-lettered by the broker ({reason})"
        dead_letter_id = "b-" + hashlib.sha256((message_id or "").encode() + body).hexdigest()[:24]
        if deaths:
            original_key = _text((deaths[0].get("routing-keys") or [original_key])[0])
    history = list(h.get("x-attempts", []))
    return DeadLetter(
        id=dead_letter_id,
        type=event_type or original_key,
        tenant=_text(h["x-tenant"]) if "x-tenant" in h else tenant,
        error_code=code,
        error_message=message,
        attempts=len(history) or int(sum(int(d.get("count", 1)) for d in deaths) or 1),
        first_failure=_time(h.get("x-first-failure-at"))
        or _time(deaths[-1].get("time") if deaths else None),
        last_failure=_time(h.get("x-last-failure-at"))
        or _time(deaths[0].get("time") if deaths else None),
        routing_key=original_key,
        message_id=message_id,
        replays=int(h.get("x-replay-count", 0)),
        headers=h,
        body=body,
        producer=producer,
        idempotency_key=key,
    )


def as_record(letter: DeadLetter, *, whole: bool = False) -> dict[str, Any]:
    """The letter as ``--json`` prints it (one JSON object a line); ``whole`` adds what
    ``show`` shows: the attempt history, the traceback and the body, passwords redacted."""
    record: dict[str, Any] = {
        "id": letter.id,
        "type": letter.type,
        "tenant": letter.tenant,
        "error_code": letter.error_code,
        "error_message": letter.error_message,
        "attempts": letter.attempts,
        "first_failure": iso_time(letter.first_failure),
        "last_failure": iso_time(letter.last_failure),
        "routing_key": letter.routing_key,
        "message_id": letter.message_id,
        "idempotency_key": letter.idempotency_key,
        "producer": letter.producer,
        "replays": letter.replays,
    }
    if whole:
        record["history"] = [
            {str(k): _text(v) for k, v in dict(a).items()}
            for a in letter.headers.get("x-attempts", [])
            if isinstance(a, Mapping)
        ]
        traceback = letter.headers.get("x-traceback")
        record["traceback"] = _text(traceback) if traceback else None
        redacted = letter.headers.get("x-redacted")
        record["redacted"] = [_text(f) for f in redacted] if redacted else []
        record["message"] = redacted_body(letter.body)
    return record


def iso_time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _peek(body: bytes) -> tuple[str | None, str | None, str | None]:
    """The type, tenant and idempotency key, as far as the body decodes (it may be the
    very reason it failed)."""
    try:
        envelope = decode(body)
    except ContractError:
        try:
            raw = msgpack.unpackb(body, raw=False)
        except Exception:  # noqa: BLE001 - malformed bodies are dead letters too
            return None, None, None
        if isinstance(raw, dict):
            data = raw.get("data")
            tenant = data.get("tenant") if isinstance(data, dict) else None
            return _str(raw.get("type")), _str(tenant), _str(raw.get("idempotency_key"))
        return None, None, None
    return envelope.type, envelope.tenant, envelope.idempotency_key


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def redacted_body(body: bytes) -> Any:
    """The body for display: decoded where possible, sealed passwords replaced."""
    try:
        raw = msgpack.unpackb(body, raw=False)
    except Exception:  # noqa: BLE001 - shown as bytes then
        return {"undecodable_body_hex": body[:256].hex()}
    return _redact(raw)


def sealed_passwords(body: bytes) -> list[tuple[str, bytes]]:
    """(path, box) of every sealed password in the body, ``data.admin.password`` say."""
    try:
        raw = msgpack.unpackb(body, raw=False)
    except Exception:  # noqa: BLE001 - an undecodable body holds none that can be named
        return []
    return [(path, box) for path, box in passwords(raw) if isinstance(box, bytes)]


def _redact(value: Any) -> Any:
    return _bytes_shown(replace_passwords(value, lambda _path, _password: REDACTED))


def _bytes_shown(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _bytes_shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bytes_shown(v) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


@dataclass(frozen=True)
class Filter:
    ids: frozenset[str] = frozenset()  # dead-letter ids, message ids or idempotency keys
    type: str | None = None
    tenant: str | None = None
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    everything: bool = False

    def unmatched(self, letters: list[DeadLetter]) -> list[str]:
        """The names in ``ids`` that no letter is known as, in order."""
        return sorted(n for n in self.ids if not any(x.known_as(n) for x in letters))

    def empty(self) -> bool:
        return not (
            self.ids
            or self.type
            or self.tenant
            or self.error
            or self.since
            or self.until
            or self.everything
        )

    def matches(self, letter: DeadLetter) -> bool:
        if self.ids and not any(letter.known_as(name) for name in self.ids):
            return False
        when = letter.last_failure
        return (
            (self.type is None or letter.type == self.type)
            and (self.tenant is None or letter.tenant == self.tenant)
            and (self.error is None or letter.error_code == self.error)
            and (self.since is None or (when is not None and when >= self.since))
            and (self.until is None or (when is not None and when <= self.until))
        )


@dataclass(frozen=True)
class Group:
    """The dead letters of one error code: how many, and their first and last failures."""

    error_code: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None


def groups(letters: list[DeadLetter]) -> list[Group]:
    """``letters`` by error code, the largest group first."""
    by_code: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        by_code.setdefault(letter.error_code, []).append(letter)
    out = []
    for code, members in by_code.items():
        seen = [x.last_failure for x in members if x.last_failure is not None]
        out.append(Group(code, len(members), min(seen, default=None), max(seen, default=None)))
    return sorted(out, key=lambda g: (-g.count, g.error_code))
