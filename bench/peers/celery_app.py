"""A Celery task that does nothing, on a quorum queue of the bench vhost, acked late
(after the task, like the fleet) and storing no result.

Worker: ``celery -A bench.peers.celery_app worker --pool solo --concurrency 1``.
Fill: ``python -m bench.peers.celery_app COUNT SIZE``.
"""

from __future__ import annotations

import os
import sys

from celery import Celery

QUEUE = "celery"
PREFETCH = int(os.environ.get("BENCH_PREFETCH", "10"))

app = Celery("bench", broker=os.environ["BENCH_AMQP_URL"])
app.conf.update(
    task_default_queue=QUEUE,
    task_default_queue_type="quorum",
    task_acks_late=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=PREFETCH,  # x concurrency 1: the same prefetch as the fleet
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop(payload: str) -> None:
    del payload


if __name__ == "__main__":
    count, size = int(sys.argv[1]), int(sys.argv[2])
    with app.producer_or_acquire() as producer:
        for i in range(count):
            noop.apply_async((f"{i:08d}".ljust(size, "x"),), producer=producer)
