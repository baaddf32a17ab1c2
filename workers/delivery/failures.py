"""Headers that travel with a failing message: its attempt history and, in the
dead-letter queue, why it is there.  Pure.

The body is kept byte for byte; everything about the failures is in headers:

- ``x-attempt``: the number of the next attempt (1 = the first);
- ``x-attempts``: one entry per failed attempt: time, worker, error code (at most 20);
- ``x-first-failure-at`` / ``x-last-failure-at``;
- ``x-original-routing-key``: the event type it was published with;
- in the dead-letter queue also ``x-dead-letter-id``, ``x-error-code``,
  ``x-error-message``, ``x-traceback`` (at most 8 KiB) and ``x-tenant``.

One exception to "byte for byte": a ``password`` that a producer sent in plaintext (a
string where the contract wants a sealed box) is replaced by :data:`PLAINTEXT_MARKER`
before the copy is stored, and ``x-redacted`` names the fields.  Such a message can never
succeed, so nothing is lost by it, and no plaintext reaches the broker's disk through
the fleet.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgpack

from messages.passwords import replace_passwords

MAX_MESSAGE_CHARS = 1024
MAX_TRACEBACK_CHARS = 8192
MAX_HISTORY = 20
FAILURE_HEADERS = (
    "x-attempt",
    "x-attempts",
    "x-first-failure-at",
    "x-last-failure-at",
    "x-original-routing-key",
    "x-dead-letter-id",
    "x-error-code",
    "x-error-message",
    "x-traceback",
    "x-tenant",
    "x-redacted",
)
PLAINTEXT_MARKER = "[plaintext password removed by the fleet]"


def scrub_plaintext_passwords(body: bytes) -> tuple[bytes, list[str]]:
    """``body`` with every plaintext ``password`` value replaced, and the paths replaced
    (``data.admin.password``).  A body without one, or not msgpack, is returned as is."""
    try:
        raw = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception:  # noqa: BLE001 - a body that does not decode holds no field to scrub
        return body, []
    paths: list[str] = []

    def scrub(path: str, password: Any) -> Any:
        """Every string in a password field, at any depth, is plaintext."""
        if isinstance(password, str):
            if password == PLAINTEXT_MARKER:
                return password
            paths.append(path)
            return PLAINTEXT_MARKER
        if isinstance(password, dict):
            return {k: scrub(f"{path}.{k}", v) for k, v in password.items()}
        if isinstance(password, list):
            return [scrub(f"{path}[{i}]", v) for i, v in enumerate(password)]
        return password

    scrubbed = replace_passwords(raw, scrub)
    if not paths:
        return body, []
    return msgpack.packb(scrubbed, use_bin_type=True), paths


def now_text(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")


def attempt_of(headers: Mapping[str, Any] | None) -> int:
    return int((headers or {}).get("x-attempt", 1))


def after_failure(
    headers: Mapping[str, Any] | None,
    *,
    code: str,
    worker: str,
    routing_key: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The headers a message carries after one more failed attempt."""
    before = dict(headers or {})
    stamp = now_text(now)
    attempt = attempt_of(before)
    history = list(before.get("x-attempts", []))
    history.append({"attempt": attempt, "at": stamp, "worker": worker, "code": code})
    return {
        **before,
        "x-attempt": attempt + 1,
        "x-attempts": history[-MAX_HISTORY:],
        "x-first-failure-at": before.get("x-first-failure-at", stamp),
        "x-last-failure-at": stamp,
        "x-original-routing-key": before.get("x-original-routing-key", routing_key),
    }


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed: a stable code, a message, and a traceback for bugs."""

    code: str
    message: str
    traceback: str | None = None
    attempt_code: str | None = None  # what the last attempt hit, when not ``code`` itself


def dead_letter_headers(
    headers: Mapping[str, Any] | None,
    failure: Failure,
    *,
    routing_key: str,
    tenant: str | None,
    worker: str,
    now: datetime | None = None,
    dead_letter_id: str | None = None,
) -> dict[str, Any]:
    out = after_failure(
        headers,
        code=failure.attempt_code or failure.code,
        worker=worker,
        routing_key=routing_key,
        now=now,
    )
    out |= {
        # Stable: a replayed message that fails again keeps the id operators know it by.
        "x-dead-letter-id": dead_letter_id or out.get("x-dead-letter-id") or str(uuid.uuid4()),
        "x-error-code": failure.code,
        "x-error-message": failure.message[:MAX_MESSAGE_CHARS],
    }
    if failure.traceback:
        out["x-traceback"] = failure.traceback[-MAX_TRACEBACK_CHARS:]
    if tenant is not None:
        out["x-tenant"] = tenant
    return out
