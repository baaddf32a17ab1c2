"""Retry tiers and their delays; pure.

A transient failure sends the message to a delay queue (one per tier, with a message
TTL) that dead-letters it back into the work queue.  The attempt count travels in the
message (``x-attempt``), so retries never multiply with the number of workers, and the
delay shrinks by a random share of up to ``jitter`` so that retries of one outage do
not come back all at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

TIER_PREFIX = "provisioning.retry."


@dataclass(frozen=True)
class RetryPolicy:
    delays: tuple[float, ...]  # seconds; attempt n waits delays[min(n, len) - 1]
    max_attempts: int  # attempts in all, the first included
    jitter: float = 0.2

    @classmethod
    def parse(cls, delays: str, max_attempts: int, jitter: float) -> RetryPolicy:
        values = tuple(float(v) for v in delays.split(",") if v.strip())
        if not values or any(v <= 0 for v in values):
            raise ValueError(f"retry delays must be positive seconds, got {delays!r}")
        if max_attempts < 1 or not 0 <= jitter < 1:
            raise ValueError("max_attempts must be >= 1 and jitter in [0, 1)")
        return cls(values, max_attempts, jitter)

    def exhausted(self, attempt: int) -> bool:
        """Whether ``attempt`` (1 = the first) was the last one allowed."""
        return attempt >= self.max_attempts

    def tier(self, attempt: int) -> float:
        """The tier's delay after failed attempt number ``attempt``."""
        return self.delays[min(attempt, len(self.delays)) - 1]

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        return self.tier(attempt) * (1 - self.jitter * rand())


def tier_queue(delay: float) -> str:
    """The delay queue of a tier, named by its delay so that new tiers never clash."""
    return f"{TIER_PREFIX}{round(delay * 1000)}ms"
