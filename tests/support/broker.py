"""Plain pika helpers for the test vhost: publish raw bodies, read queues back.

Reads and purges are guest's (an administrator, on the suite's vhost only); raw bodies
are published as a producer would, through the suite's producer account with its
``user_id`` (``tests/support/platform``), unless a test names another account."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions

from bench.common import amqp_parameters
from tests.support.platform import STATE_DIR, VHOST, read_env_file

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/" + urllib.parse.quote(VHOST, safe="")


@dataclass(frozen=True)
class Received:
    routing_key: str
    properties: pika.BasicProperties
    body: bytes

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})


def role_parameters(role: str) -> pika.URLParameters:
    """How a broker account of the suite's platform (``suite``, ``order``...) reaches the
    broker (over TLS with the platform's CA where the platform started it)."""
    url = read_env_file(STATE_DIR / "broker" / f"{role}.env")["PROVISIONER_AMQP_URL"]
    ca_file = read_env_file(STATE_DIR / "provisioner.env").get("PROVISIONER_AMQP_CA_FILE", "")
    return amqp_parameters(url, ca_file)


@contextmanager
def channel(broker: pika.ConnectionParameters | None = None) -> Iterator[Any]:
    connection = pika.BlockingConnection(broker or pika.URLParameters(AMQP_URL))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def publish_raw(
    exchange: str,
    routing_key: str,
    body: bytes,
    message_id: str = "raw",
    *,
    role: str = "suite",
    user_id: str | None = "",
) -> None:
    """Publish ``body`` as ``role``, confirmed; ``user_id`` "" is the role's own user
    name, None leaves the property unset."""
    broker = role_parameters(role)
    if user_id == "":
        user_id = broker.credentials.username
    with channel(broker) as ch:
        ch.confirm_delivery()
        ch.basic_publish(
            exchange,
            routing_key,
            body,
            pika.BasicProperties(
                content_type="application/msgpack",
                delivery_mode=2,
                message_id=message_id,
                user_id=user_id,
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
