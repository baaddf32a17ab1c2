"""A Dramatiq actor that does nothing, on a quorum queue of the bench vhost.

Worker: ``dramatiq bench.peers.dramatiq_app --processes 1 --threads 1`` (prefetch from
``dramatiq_queue_prefetch``).  Fill: ``python -m bench.peers.dramatiq_app COUNT SIZE``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

QUEUE = "default"


class QuorumRabbitmqBroker(RabbitmqBroker):
    """Dramatiq's broker, declaring its queues as quorum queues like the fleet's."""

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        arguments: dict[str, Any] = super()._build_queue_arguments(queue_name)
        arguments["x-queue-type"] = "quorum"
        return arguments


broker = QuorumRabbitmqBroker(url=os.environ["BENCH_AMQP_URL"], confirm_delivery=True)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(payload: str) -> None:
    del payload


if __name__ == "__main__":
    count, size = int(sys.argv[1]), int(sys.argv[2])
    for i in range(count):
        noop.send(f"{i:08d}".ljust(size, "x"))
    broker.close()
