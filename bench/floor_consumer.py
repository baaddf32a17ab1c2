"""The fair floor of the pipeline: the fleet's work for each message done inline on raw
pika, with no framework at all.

For each message, what the fleet's worker does for a ``user.created`` that succeeds,
and only that: decode and validate with :mod:`messages`, the idempotency lookup, open
the sealed password (through the same key ring), plan and apply against the same
in-memory directory (:func:`bench.memory_worker.bench_domain`), write the idempotency
record (its payload hash included), publish the result event, and ack once the broker
confirms it (confirms in flight, handled by callback, as the fleet does).  Its I/O is
the fleet's, done the plain way: deliveries into a list, publishes and acks queued on the
channel underneath pika's blocking one, and one ``process_data_events`` a turn writing
them and reading what came.  Left out: the
producer policy, the session and its DC pinning, the retry and dead-letter paths,
metrics, the log line.  The gap between the worker and this floor is
the fleet's own overhead.

``python -m bench.floor_consumer [--forget]`` with the ``PROVISIONER_*`` variables set
(as ``bench.memory_worker``); stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
from collections import deque
from typing import Any

import pika

from bench.memory_worker import bench_setting
from messages.envelope import decode
from messages.results import RESULTS_EXCHANGE, Outcome, Result, encode_result
from workers.broker import topology
from workers.broker.connection import parameters
from workers.delivery import idempotency
from workers.provisioning import engine
from workers.provisioning.keys import KeyRing
from workers.provisioning.realm import read_realm


class ConfirmedAcks:
    """The result's confirm in flight, the raw way: the broker numbers a channel's
    publishes 1, 2, ...; a delivery is acked once its result's number is confirmed."""

    def __init__(self, connection: Any, channel: Any) -> None:
        self.channel = channel._impl  # noqa: SLF001 - queues frames, waits for nothing
        self.waiting: dict[int, int] = {}  # publish number -> delivery tag
        self.confirmed: list[int] = []
        self.published = 0
        selected: list[bool] = []
        self.channel.confirm_delivery(self._on_confirm, lambda _: selected.append(True))
        while not selected:
            connection.process_data_events(time_limit=0.1)

    def _on_confirm(self, frame: Any) -> None:
        tag, multiple = frame.method.delivery_tag, frame.method.multiple
        numbers = [n for n in self.waiting if n <= tag] if multiple else [tag]
        self.confirmed.extend(self.waiting.pop(n) for n in numbers)

    def publish(self, delivery_tag: int, routing_key: str, body: bytes, answers: str) -> None:
        self.published += 1
        self.waiting[self.published] = delivery_tag  # noted first: pika reads as it writes
        self.channel.basic_publish(
            RESULTS_EXCHANGE,
            routing_key,
            body,
            pika.BasicProperties(
                content_type="application/msgpack",
                delivery_mode=pika.DeliveryMode.Persistent,
                correlation_id=answers,
            ),
        )

    def ack_confirmed(self) -> None:
        while self.confirmed:
            self.channel.basic_ack(self.confirmed.pop(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forget", action="store_true", help="keep no write after the start")
    args = parser.parse_args()
    directory, settings = bench_setting(forget=args.forget)
    realm = read_realm(directory, settings.ldap_bind_dn)
    ring = KeyRing.from_settings(settings)
    ledger = idempotency.Ledger(directory, settings.ldap_base_dn)
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    connection = pika.BlockingConnection(parameters(settings))
    channel = connection.channel()
    acks = ConfirmedAcks(connection, channel)
    channel.basic_qos(prefetch_count=settings.prefetch)
    inbox: deque[tuple[Any, Any, bytes]] = deque()
    channel.basic_consume(topology.WORK_QUEUE, lambda _c, m, p, b: inbox.append((m, p, b)))
    while not stopping:
        connection.process_data_events(time_limit=0 if inbox else 0.01)
        acks.ack_confirmed()
        if not inbox:
            continue
        method, properties, body = inbox.popleft()
        envelope = decode(body)
        found = ledger.lookup(envelope)
        if found.record is None:
            ctx = ring.context(realm, envelope.idempotency_key, settings.sam_digits)
            details = engine.handle(envelope, directory, ctx)
            ledger.record(envelope, details, producer=properties.user_id or "")
        else:
            details = found.record.details
        result = Result(
            Outcome.SUCCEEDED, envelope.type, envelope.id, envelope.idempotency_key, 1, details
        )
        acks.publish(method.delivery_tag, result.routing_key, encode_result(result), envelope.id)
    connection.close()


if __name__ == "__main__":
    main()
