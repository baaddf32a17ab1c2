"""Publisher confirms in flight on a blocking channel: the worker publishes a message's
copy and result and goes on to the next message; the message is acked once the broker
has confirmed them all, and given back (requeued) if the broker refused one.

pika's ``BlockingChannel`` waits for each confirm inside ``basic_publish``; its
underlying channel (``channel._impl``, the one pika's own ``confirm_delivery`` drives)
takes a callback instead.  The callback runs as the frames are read, in their order: a
``basic.return`` (an unroutable mandatory copy) comes before the ``basic.ack`` of the
same publish, so a returned copy is known before its message could be acked.

Publishes, acks and nacks go through that underlying channel too: they are queued on the
connection, in order, and written by the connection's next ``process_data_events``,
which the worker calls once a turn of its loop (the blocking channel's own methods each
wait for the socket, a poll per frame).  A message is acked (or given back) from the
confirm callback itself, as soon as its last publish is confirmed, so the same
``process_data_events`` that read the confirm writes the ack: it does not wait for the
next message's work.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pika
from pika.spec import Basic


@dataclass
class Held:
    """A message taken from the queue, not acked yet: its publishes not yet confirmed,
    and why it must be given back, if it must."""

    delivery_tag: int
    unconfirmed: set[int] = field(default_factory=set)
    refused: str = ""
    sealed: bool = False  # all its publishes are made: none is to come

    @property
    def settled(self) -> bool:
        return self.sealed and not self.unconfirmed


@dataclass(frozen=True)
class _Publish:
    held: Held
    exchange: str
    routing_key: str
    ident: str | None  # the copy's message_id, or the result's correlation_id


class Confirms:
    """Publishes with confirms in flight; acks each message once its publishes are all
    confirmed, or gives it back (``on_given_back`` is told why), in the order taken."""

    def __init__(
        self, connection: Any, channel: Any, on_given_back: Callable[[Held], None]
    ) -> None:
        self._on_given_back = on_given_back
        self._sent = 0  # the broker numbers the publishes of a channel 1, 2, ... in confirm mode
        self._publishes: dict[int, _Publish] = {}
        self._held: deque[Held] = deque()
        selected: list[bool] = []
        self._impl = impl = channel._impl  # noqa: SLF001 - see the module's docstring
        impl.confirm_delivery(
            ack_nack_callback=self._on_confirm, callback=lambda _: selected.append(True)
        )
        impl.add_on_return_callback(self._on_return)
        while not selected:
            connection.process_data_events(time_limit=0.1)

    def hold(self, delivery_tag: int) -> Held:
        held = Held(delivery_tag)
        self._held.append(held)
        return held

    def publish(
        self,
        held: Held,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
        *,
        mandatory: bool = False,
    ) -> None:
        # Noted first: pika reads while it writes, and the confirm (or the return) of this
        # very publish may be handled before basic_publish returns.
        self._sent += 1
        held.unconfirmed.add(self._sent)
        ident = properties.correlation_id or properties.message_id
        self._publishes[self._sent] = _Publish(held, exchange, routing_key, ident)
        self._impl.basic_publish(exchange, routing_key, body, properties, mandatory)

    def seal(self, held: Held) -> None:
        """All of ``held``'s publishes are made: it is acked once they are confirmed
        (now, if they are already)."""
        held.sealed = True
        self._settle()

    @property
    def pending(self) -> int:
        """Messages held: taken and not yet settled."""
        return len(self._held)

    def _settle(self) -> None:
        """Ack the messages at the front whose publishes are all confirmed; give back
        (requeue) one whose publish the broker refused: it is redelivered, and answered
        again.  Queued frames, written with the next ``process_data_events``."""
        while self._held and self._held[0].settled:
            held = self._held.popleft()
            if held.refused:
                self._on_given_back(held)
                self._impl.basic_nack(held.delivery_tag, requeue=True)
            else:
                self._impl.basic_ack(held.delivery_tag)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tags = (
            [t for t in self._publishes if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            publish = self._publishes.pop(tag, None)
            if publish is None:
                continue
            publish.held.unconfirmed.discard(tag)
            if isinstance(method, Basic.Nack):
                publish.held.refused = publish.held.refused or (
                    f"the broker refused the publish to {publish.exchange or '(default)'}"
                    f"/{publish.routing_key}"
                )
        self._settle()

    def _on_return(
        self, _channel: Any, method: Any, properties: pika.BasicProperties, _body: bytes
    ) -> None:
        ident = properties.correlation_id or properties.message_id
        for publish in self._publishes.values():  # the oldest such publish not confirmed
            if (publish.exchange, publish.routing_key, publish.ident) == (
                method.exchange,
                method.routing_key,
                ident,
            ):
                publish.held.refused = publish.held.refused or (
                    f"unroutable: {method.exchange or '(default)'}/{method.routing_key} "
                    f"({method.reply_text})"
                )
                return
