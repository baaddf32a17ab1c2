"""Plain pika helpers for the test vhost: publish raw bodies, read queues back."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions

from tests.support.platform import VHOST

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/" + urllib.parse.quote(VHOST, safe="")


@dataclass(frozen=True)
class Received:
    routing_key: str
    properties: pika.BasicProperties
    body: bytes

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})


@contextmanager
def channel() -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        yield connection.channel()
    finally:
        connection.close()


def publish_raw(exchange: str, routing_key: str, body: bytes, message_id: str = "raw") -> None:
    with channel() as ch:
        ch.confirm_delivery()
        ch.basic_publish(
            exchange,
            routing_key,
            body,
            pika.BasicProperties(
                content_type="application/msgpack", delivery_mode=2, message_id=message_id
            ),
            mandatory=True,
        )


def drain(queue: str) -> list[Received]:
    """Every message now in ``queue``, removed from it."""
    out: list[Received] = []
    with channel() as ch:
        while True:
            method, properties, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(Received(method.routing_key, properties, body))


def depth(queue: str) -> int:
    with channel() as ch:
        return int(ch.queue_declare(queue, passive=True).method.message_count)


def purge(*queues: str) -> None:
    with channel() as ch:
        for queue in queues:
            ch.queue_purge(queue)


WORK = "provisioning.work"
DLQ = "provisioning.dead-letter"


def bind_results(queue: str, pattern: str = "#") -> None:
    with channel() as ch:
        ch.queue_declare(queue, durable=True)
        ch.queue_bind(queue, "provisioning.results", routing_key=pattern)


def count(queue: str) -> int:
    """The queue's depth, or -1 while the broker does not answer (a restart in progress)."""
    try:
        return depth(queue)
    except pika.exceptions.AMQPError:
        return -1
