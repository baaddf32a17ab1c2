"""The producer's edge: publish envelopes to ``provisioning.events`` with confirms.

Messages are persistent and ``mandatory`` (a message no queue takes is an error, not
silence).  Up to ``window`` messages are in flight unconfirmed at once, so a bulk
publish costs one round trip per window rather than one per message.  A message is
reported confirmed only when the broker acked it and did not return it.

Every message carries ``user_id``, the broker user the connection authenticated as:
RabbitMQ refuses a ``user_id`` that is not the connection's, and the fleet refuses a
message without one (``unauthorized_producer``), so it names the producer who asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pika
import pika.exceptions
import pika.spec
from pika.adapters.select_connection import SelectConnection

from messages.amqp import Broker, as_endpoints, user_of
from messages.envelope import Envelope, encode

EVENTS_EXCHANGE = "provisioning.events"
CONTENT_TYPE = "application/msgpack"
DEFAULT_WINDOW = 1000

K = TypeVar("K")


class PublishError(Exception):
    """The broker could not be reached, or a single publish was not confirmed."""


@dataclass
class PublishReport(Generic[K]):
    """What became of each item: ``confirmed`` keys, and ``failed`` (key, reason) pairs.

    Items that were never sent (the connection died first) are failed too.
    """

    confirmed: list[K] = field(default_factory=list)
    failed: list[tuple[K, str]] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.confirmed) + len(self.failed)


def properties_for(envelope: Envelope, user_id: str | None) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=envelope.id,
        user_id=user_id,
    )


def publish(broker: Broker, envelope: Envelope) -> None:
    """Publish one envelope; raise :class:`PublishError` unless the broker confirmed it."""
    report = publish_all(broker, [(envelope.id, envelope)])
    if report.failed:
        raise PublishError(report.failed[0][1])


def publish_all(
    broker: Broker,
    items: Iterable[tuple[K, Envelope]],
    *,
    window: int = DEFAULT_WINDOW,
    on_progress: Callable[[PublishReport[K]], None] | None = None,
) -> PublishReport[K]:
    """Publish every (key, envelope) over one connection, ``window`` unconfirmed at a time:
    to the first of the broker's nodes that answers (nothing is sent to one that does not)."""
    if window < 1:
        raise ValueError("window must be at least 1")
    pending = iter(items)
    nodes = as_endpoints(broker)
    for index, node in enumerate(nodes):
        try:
            return _ConfirmedRun(node, pending, window, on_progress).execute()
        except PublishError:
            if index == len(nodes) - 1:
                raise
    raise AssertionError("unreachable: a broker has at least one node")


class _ConfirmedRun(Generic[K]):
    """One connection's worth of publishing, driven by pika's ioloop."""

    def __init__(
        self,
        parameters: pika.ConnectionParameters,
        items: Iterator[tuple[K, Envelope]],
        window: int,
        on_progress: Callable[[PublishReport[K]], None] | None,
    ) -> None:
        self._parameters = parameters
        self._user_id = user_of(self._parameters)
        self._items = items
        self._window = window
        self._on_progress = on_progress
        self._report: PublishReport[K] = PublishReport()
        self._pending: dict[int, tuple[K, str]] = {}  # delivery tag -> (key, message id)
        self._returned: dict[str, str] = {}  # message id -> reason
        self._next_tag = 1
        self._exhausted = False
        self._channel: Any = None
        self._connection: SelectConnection | None = None
        self._error: str | None = None
        self._unreachable = False

    def execute(self) -> PublishReport[K]:
        self._connection = SelectConnection(
            self._parameters,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_connection_closed,
        )
        self._connection.ioloop.start()
        if self._unreachable:
            raise PublishError(self._error or "cannot reach the broker")
        self._fail_rest(self._error or "connection closed")
        return self._report

    # -- connection and channel lifecycle

    def _on_open_error(self, connection: SelectConnection, error: BaseException) -> None:
        self._error = f"cannot reach the broker: {error!r}"
        self._unreachable = True
        connection.ioloop.stop()

    def _on_connection_open(self, connection: SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_closed(self, connection: SelectConnection, reason: BaseException) -> None:
        if not self._finished():
            self._error = f"connection lost: {reason!r}"
        connection.ioloop.stop()

    def _on_channel_open(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_ok)

    def _on_channel_closed(self, _channel: Any, reason: BaseException) -> None:
        if not self._finished():
            self._error = f"channel closed: {reason!r}"
        assert self._connection is not None
        if self._connection.is_open:
            self._connection.close()

    def _on_confirm_ok(self, _frame: Any) -> None:
        self._fill_window()

    # -- publishing and confirms

    def _fill_window(self) -> None:
        while not self._exhausted and len(self._pending) < self._window:
            item = next(self._items, None)
            if item is None:
                self._exhausted = True
                break
            key, envelope = item
            self._channel.basic_publish(
                EVENTS_EXCHANGE,
                envelope.type,
                encode(envelope),
                properties_for(envelope, self._user_id),
                mandatory=True,
            )
            self._pending[self._next_tag] = (key, envelope.id)
            self._next_tag += 1
        if self._finished():
            self._channel.close()

    def _finished(self) -> bool:
        return self._exhausted and not self._pending

    def _on_return(
        self, _channel: Any, method: pika.spec.Basic.Return, properties: Any, _body: bytes
    ) -> None:
        # RabbitMQ sends basic.return before the basic.ack of the same message.
        reason = f"unroutable: no queue is bound for {method.routing_key!r}"
        self._returned[str(properties.message_id)] = reason

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        tags = [t for t in self._pending if t <= tag] if method.multiple else [tag]
        acked = isinstance(method, pika.spec.Basic.Ack)
        for t in tags:
            key, message_id = self._pending.pop(t)
            returned = self._returned.pop(message_id, None)
            if acked and returned is None:
                self._report.confirmed.append(key)
            else:
                self._report.failed.append((key, returned or "the broker refused the message"))
        if self._on_progress is not None:
            self._on_progress(self._report)
        self._fill_window()

    def _fail_rest(self, reason: str) -> None:
        for key, _message_id in self._pending.values():
            self._report.failed.append((key, f"not confirmed: {reason}"))
        self._pending.clear()
        for key, _envelope in self._items:
            self._report.failed.append((key, f"not sent: {reason}"))
