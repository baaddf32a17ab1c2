"""The producer's edge: publish envelopes to ``provisioning.events`` with confirms.

Messages are persistent and ``mandatory``: a message no queue takes is an error, not
silence.  :meth:`Publisher.publish` returns only once the broker has confirmed.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import pika
import pika.exceptions

from messages.envelope import Envelope, encode

EVENTS_EXCHANGE = "provisioning.events"
CONTENT_TYPE = "application/msgpack"


class PublishError(Exception):
    """The broker did not confirm a message (nacked, unroutable, or unreachable)."""


class Publisher:
    def __init__(self, amqp_url: str) -> None:
        try:
            self._connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        except pika.exceptions.AMQPError as exc:
            raise PublishError(f"cannot reach the broker: {exc!r}") from exc

    def publish(self, envelope: Envelope) -> None:
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=envelope.id,
        )
        try:
            self._channel.basic_publish(
                EVENTS_EXCHANGE, envelope.type, encode(envelope), properties, mandatory=True
            )
        except pika.exceptions.UnroutableError as exc:
            raise PublishError(f"no queue is bound for {envelope.type!r}") from exc
        except pika.exceptions.NackError as exc:
            raise PublishError("the broker refused the message") from exc
        except pika.exceptions.AMQPError as exc:
            raise PublishError(f"broker error: {exc!r}") from exc

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()
