"""Headers of a message the worker dead-letters itself; pure.

The body is kept byte for byte; everything about the failure travels in headers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

MAX_MESSAGE_CHARS = 1024


def failure_headers(
    *,
    code: str,
    message: str,
    routing_key: str,
    tenant: str | None,
    worker: str,
    now: datetime | None = None,
    dead_letter_id: str | None = None,
) -> dict[str, str]:
    failed_at = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    headers = {
        "x-dead-letter-id": dead_letter_id or str(uuid.uuid4()),
        "x-error-code": code,
        "x-error-message": message[:MAX_MESSAGE_CHARS],
        "x-original-routing-key": routing_key,
        "x-failed-at": failed_at,
        "x-worker": worker,
    }
    if tenant is not None:
        headers["x-tenant"] = tenant
    return headers
