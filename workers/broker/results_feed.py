"""A private feed of result events: a queue of its own, bound to ``provisioning.results``
before anything is published, so that no answer is missed; gone when its reader goes.

Read with the results role's account (``PROVISIONER_RESULTS_AMQP_URL``), which may
declare queues named ``provisioning.results.*`` and read them, and nothing else.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import pika

from messages import amqp
from messages.errors import ContractError
from messages.results import RESULTS_EXCHANGE, Result, decode_result

QUEUE_PREFIX = f"{RESULTS_EXCHANGE}.wait-"


class ResultsFeed:
    def __init__(self, broker: amqp.Endpoints, purpose: str = "") -> None:
        self._connection = pika.BlockingConnection(broker)
        self._channel: Any = self._connection.channel()
        self.queue = f"{QUEUE_PREFIX}{purpose + '-' if purpose else ''}{secrets.token_hex(4)}"
        self._channel.queue_declare(self.queue, exclusive=True, auto_delete=True)
        self._channel.queue_bind(self.queue, RESULTS_EXCHANGE, routing_key="#")
        self._channel.basic_qos(prefetch_count=500)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def results(self, idle_seconds: float) -> Iterator[Result | None]:
        """Each result as it comes; ``None`` after ``idle_seconds`` without one (so that
        the reader can show its progress and decide to stop).  A body that is not a result
        is skipped."""
        for method, _properties, body in self._channel.consume(
            self.queue, inactivity_timeout=idle_seconds
        ):
            if method is None:
                yield None
                continue
            self._channel.basic_ack(method.delivery_tag)
            try:
                yield decode_result(body)
            except ContractError:
                continue

    def close(self) -> None:
        if self._connection.is_open:
            try:
                self._channel.cancel()
            finally:
                self._connection.close()
