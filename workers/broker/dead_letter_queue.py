"""The dead-letter queue's pika edge: read it, replay from it, discard from it, export and
import it.  Everything streams: one message is in hand at a time, so 100k dead letters
never sit in memory together.

A pass takes every message that is in the queue when it starts with ``basic.get``
(unacked); the messages chosen are acked (after a confirmed re-publish, for a replay),
and the others go back to the queue when the pass's channel closes.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import pika

from messages.amqp import Broker, as_endpoints
from workers.broker import topology
from workers.ops.dead_letter_view import DeadLetter, view

# Headers a replay drops: they describe the failure that put the message here.
FAILURE_ONLY = (
    "x-error-code",
    "x-error-message",
    "x-traceback",
    "x-death",
    "x-delivery-count",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
)


@dataclass
class Held:
    """A dead letter in hand during a pass: choose to ack it, or leave it."""

    letter: DeadLetter
    delivery_tag: int
    properties: pika.BasicProperties


class DeadLetterQueue:
    def __init__(self, broker: Broker, queue: str = topology.DEAD_LETTER_QUEUE) -> None:
        self._broker = as_endpoints(broker)
        self._queue = queue

    @contextmanager
    def pass_over(self) -> Iterator[tuple[Any, Iterator[Held]]]:
        """(channel, the messages in the queue now, one at a time)."""
        connection = pika.BlockingConnection(self._broker)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            total = channel.queue_declare(self._queue, passive=True).method.message_count
            yield channel, self._take(channel, total)
        finally:
            if connection.is_open:
                connection.close()  # whatever was not acked goes back to the queue

    def _take(self, channel: Any, total: int) -> Iterator[Held]:
        for _ in range(total):
            method, properties, body = channel.basic_get(self._queue, auto_ack=False)
            if method is None:
                return
            letter = view(
                method.routing_key,
                properties.message_id,
                properties.headers,
                body,
                properties.user_id,
            )
            yield Held(letter, method.delivery_tag, properties)

    def letters(self) -> Iterator[DeadLetter]:
        with self.pass_over() as (_, held):
            for item in held:
                yield item.letter


def replay_headers(letter: DeadLetter) -> dict[str, Any]:
    """The headers of a replayed message: the failure dropped, attempts from 1 again, the
    history kept, and the replay counted."""
    headers = {k: v for k, v in letter.headers.items() if k not in FAILURE_ONLY}
    headers["x-attempt"] = 1
    headers["x-replay-count"] = letter.replays + 1
    headers["x-dead-letter-id"] = letter.id
    headers["x-original-routing-key"] = letter.routing_key
    return headers


def republish(channel: Any, held: Held) -> None:
    """Back into the original work queue (not through provisioning.events, whose other
    subscribers would see it twice), confirmed; then the dead letter is acked.  It keeps
    its producer's ``user_id`` (the operator's account may: ``impersonator``), so the
    producer policy and the records judge the replay as the producer's own request."""
    channel.basic_publish(
        "",
        topology.WORK_QUEUE,
        held.letter.body,
        pika.BasicProperties(
            content_type=held.properties.content_type,
            message_id=held.properties.message_id,
            user_id=held.properties.user_id,
            delivery_mode=pika.DeliveryMode.Persistent,
            headers=replay_headers(held.letter),
        ),
        mandatory=True,
    )
    channel.basic_ack(held.delivery_tag)


class RateLimit:
    """At most ``per_second`` calls a second (None: no limit)."""

    def __init__(
        self,
        per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1 / per_second if per_second else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = 0.0

    def wait(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        if now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self._interval


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bin": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return {"$time": value.isoformat()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return base64.b64decode(value["$bin"])
        if set(value) == {"$time"}:
            return datetime.fromisoformat(value["$time"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


def export_line(held: Held) -> str:
    """One JSON line: the body byte for byte (base64; sealed passwords stay sealed)."""
    return json.dumps(
        {
            "id": held.letter.id,
            "routing_key": held.letter.routing_key,
            "message_id": held.properties.message_id,
            "user_id": held.properties.user_id,
            "content_type": held.properties.content_type,
            "headers": _jsonable(dict(held.letter.headers)),
            "body": base64.b64encode(held.letter.body).decode("ascii"),
        },
        sort_keys=True,
    )


def import_lines(broker: Broker, stream: IO[str]) -> int:
    """Put exported dead letters back into the dead-letter queue, confirmed; return how many."""
    connection = pika.BlockingConnection(as_endpoints(broker))
    count = 0
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for line in stream:
            if not line.strip():
                continue
            item = json.loads(line)
            channel.basic_publish(
                topology.DEAD_LETTER_EXCHANGE,
                item["routing_key"],
                base64.b64decode(item["body"]),
                pika.BasicProperties(
                    content_type=item.get("content_type"),
                    message_id=item.get("message_id"),
                    user_id=item.get("user_id"),
                    delivery_mode=pika.DeliveryMode.Persistent,
                    headers=_from_jsonable(item.get("headers") or {}),
                ),
                mandatory=True,
            )
            count += 1
    finally:
        if connection.is_open:
            connection.close()
    return count
