"""Broker topology: names and queue arguments (pure), and ``declare`` (the pika edge).

The work queue, a delay queue per retry tier, the dead-letter exchange and queue, and
the exchanges for events and results.

Quorum queues with an explicit delivery limit: RabbitMQ 3.10 has no default, and a
poison message would otherwise be redelivered forever.  Dead-lettering from the work
queue is at-least-once, which RabbitMQ only honours together with
``x-overflow=reject-publish``.
"""

from __future__ import annotations

from typing import Any

import pika
import pika.exceptions

from messages.amqp import Broker, as_endpoints
from messages.publisher import EVENTS_EXCHANGE
from messages.results import RESULTS_EXCHANGE
from workers.runtime.retry import RetryPolicy, tier_queue

__all__ = ["EVENTS_EXCHANGE", "RESULTS_EXCHANGE", "declare"]

DEAD_LETTER_EXCHANGE = "provisioning.dead-letter"
NOT_FOUND = 404
WORK_QUEUE = "provisioning.work"
DEAD_LETTER_QUEUE = "provisioning.dead-letter"
DELIVERY_LIMIT = 20


def work_queue_arguments() -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def dead_letter_queue_arguments() -> dict[str, Any]:
    return {"x-queue-type": "quorum"}


def retry_queue_arguments(delay: float) -> dict[str, Any]:
    """A delay tier: messages wait ``delay`` then dead-letter back into the work queue."""
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": round(delay * 1000),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": WORK_QUEUE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def declare(channel: Any, policy: RetryPolicy) -> None:
    """Declare every exchange, queue and binding; safe to repeat."""
    channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(RESULTS_EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(WORK_QUEUE, durable=True, arguments=work_queue_arguments())
    channel.queue_bind(WORK_QUEUE, EVENTS_EXCHANGE, routing_key="#")
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True, arguments=dead_letter_queue_arguments())
    channel.queue_bind(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, routing_key="")
    declare_retry_tiers(channel, policy)


def apply(parameters: Any, policy: RetryPolicy) -> None:
    """:func:`declare`, over a connection of its own (the operator's account)."""
    connection = pika.BlockingConnection(parameters)
    try:
        declare(connection.channel(), policy)
    finally:
        connection.close()


def declare_retry_tiers(channel: Any, policy: RetryPolicy) -> None:
    """The delay queues of ``policy``: named by their delay, so declaring never clashes."""
    for delay in sorted(set(policy.delays)):
        channel.queue_declare(
            tier_queue(delay), durable=True, arguments=retry_queue_arguments(delay)
        )


def retry_tier_queues(policy: RetryPolicy) -> list[str]:
    return [tier_queue(delay) for delay in sorted(set(policy.delays))]


def definitions(vhost: str, policy: RetryPolicy) -> dict[str, Any]:
    """The same topology as :func:`declare`, as a RabbitMQ definitions document."""
    queues = [
        (WORK_QUEUE, work_queue_arguments()),
        (DEAD_LETTER_QUEUE, dead_letter_queue_arguments()),
        *((tier_queue(d), retry_queue_arguments(d)) for d in sorted(set(policy.delays))),
    ]
    exchanges = [
        (EVENTS_EXCHANGE, "topic"),
        (RESULTS_EXCHANGE, "topic"),
        (DEAD_LETTER_EXCHANGE, "fanout"),
    ]
    bindings = [(EVENTS_EXCHANGE, WORK_QUEUE, "#"), (DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, "")]
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {
                "name": name,
                "vhost": vhost,
                "type": kind,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name, kind in exchanges
        ],
        "queues": [
            {
                "name": name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": arguments,
            }
            for name, arguments in queues
        ],
        "bindings": [
            {
                "source": source,
                "vhost": vhost,
                "destination": queue,
                "destination_type": "queue",
                "routing_key": key,
                "arguments": {},
            }
            for source, queue, key in bindings
        ],
    }


def depths(broker: Broker, queues: list[str]) -> dict[str, tuple[int, int] | None]:
    """(messages, consumers) of each queue, as the broker says now; None: no such queue
    (the topology is not applied).  A passive declare each, on its own channel."""
    connection = pika.BlockingConnection(as_endpoints(broker))
    found: dict[str, tuple[int, int] | None] = {}
    try:
        for name in queues:
            channel = connection.channel()
            try:
                ok = channel.queue_declare(name, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != NOT_FOUND:
                    raise
                found[name] = None
                continue
            found[name] = (ok.method.message_count, ok.method.consumer_count)
            channel.close()
    finally:
        connection.close()
    return found
