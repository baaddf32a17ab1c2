"""``provisioner status``: the fleet on one screen, and whether anything is wrong.

What is read (the I/O is the caller's, through the broker and directory edges, and
:func:`read_worker` for a worker's own endpoint): the broker's queues with their depths
and consumers, the dead letters by code, each worker process's ``/healthz``, ``/readyz``
and ``/metrics``, and each DC (reachable, bootstrap in place).  :func:`problems` says
what is wrong, one line each: the command exits 1 when there is any.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Queue:
    name: str
    messages: int | None  # None: the queue does not exist
    consumers: int | None


@dataclass(frozen=True)
class Worker:
    url: str
    live: bool
    ready: bool
    in_flight: float = 0.0
    processed: float = 0.0
    last_success: datetime | None = None


@dataclass(frozen=True)
class Dc:
    name: str
    reachable: bool
    detail: str  # "bootstrap in place", or what failed


@dataclass
class Status:
    work_queue: str
    dead_letter_queue: str
    queues: list[Queue] = field(default_factory=list)
    dead_letters: dict[str, int] = field(default_factory=dict)  # code -> count
    workers: list[Worker] = field(default_factory=list)
    dcs: list[Dc] = field(default_factory=list)
    broker_error: str | None = None


def problems(status: Status) -> list[str]:
    """What an operator must look at; empty when the fleet is well."""
    found = []
    if status.broker_error:
        found.append(f"the broker does not answer: {status.broker_error}")
    found += [
        f"{q.name} is missing: provisioner topology apply"
        for q in status.queues
        if q.messages is None
    ]
    work = next((q for q in status.queues if q.name == status.work_queue), None)
    if work is not None and work.consumers == 0:
        found.append(f"no worker consumes {work.name} ({work.messages} message(s) waiting)")
    waiting = sum(status.dead_letters.values())
    if waiting:
        codes = ", ".join(f"{c} {n}" for c, n in sorted(status.dead_letters.items()))
        found.append(f"{waiting} dead letter(s) wait for an operator ({codes})")
    if not status.workers:
        found.append("no worker's metrics endpoint answers")
    for worker in status.workers:
        if not worker.live:
            found.append(f"worker {worker.url} is not live (its loop is stuck, or it is gone)")
        elif not worker.ready:
            found.append(f"worker {worker.url} is not ready (no broker or no DC)")
    found += [f"DC {dc.name}: {dc.detail}" for dc in status.dcs if dc.detail != BOOTSTRAPPED]
    return found


BOOTSTRAPPED = "reachable, bootstrap in place"
HTTP_OK = 200


def _answers(url: str, timeout: float) -> tuple[bool, str]:
    """(200?, body); an error status is an answer, no connection raises ``OSError``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - our workers
            return reply.status == HTTP_OK, reply.read().decode("utf-8", "replace")
    except urllib.error.HTTPError:
        return False, ""


def read_worker(base: str, timeout: float = 2.0) -> Worker | None:
    """A worker process from its endpoint (``http://host:port``); None: nothing answers."""
    try:
        live, _ = _answers(f"{base}/healthz", timeout)
    except (urllib.error.URLError, OSError):
        return None
    ready, _ = _answers(f"{base}/readyz", timeout)
    _, text = _answers(f"{base}/metrics", timeout)
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "provisioner_messages_total":
                values["processed"] = values.get("processed", 0.0) + sample.value
            elif sample.name in {
                "provisioner_in_flight_messages",
                "provisioner_last_success_timestamp_seconds",
            }:
                values[sample.name] = sample.value
    stamp = values.get("provisioner_last_success_timestamp_seconds", 0.0)
    return Worker(
        base,
        live,
        ready,
        values.get("provisioner_in_flight_messages", 0.0),
        values.get("processed", 0.0),
        datetime.fromtimestamp(stamp, UTC) if stamp else None,
    )
