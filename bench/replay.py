"""DLQ replay rate: ``provisioner dlq replay --all`` moving 10k dead letters back into the
work queue, against two raw pika loops making the same move, in the same run.

The dead letters are what the worker makes: ``user.created`` envelopes (sealed
password, 342 bytes) with the worker's dead-letter headers (id, code, message, attempt
history, tenant).  Every variant moves all of them from the quorum dead-letter queue
to the quorum work queue, and none may lose or duplicate one: each is re-published
with a publisher confirm before its dead letter is acked.

- **raw, get + confirm each**: the same primitives as ``provisioner dlq`` (``basic.get``,
  a confirmed publish, an ack), with nothing else: no parsing of the letter, no
  headers rebuilt, no filter, no output.  It shows the cost of the command's own code.
- **raw, consume + confirms in flight**: a pika ``SelectConnection`` shovel consuming
  with prefetch 1000 and acking each message when its re-publish is confirmed.  It
  shows what the ``basic.get`` design (one message in hand, so a filtered pass over
  100k letters holds none in memory and never stalls on unmatched ones) costs.

Run with RabbitMQ on 127.0.0.1:5672: ``.venv/bin/python -m bench.replay [--messages N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.channel
import pika.spec

from bench.common import REPO, bench_vhost, user_envelopes
from messages.envelope import encode
from workers.broker import topology
from workers.delivery.failures import Failure, dead_letter_headers

PREFETCH = 1000


def fill(url: str, count: int) -> None:
    """``count`` dead letters, as a worker dead-letters them, published confirmed."""
    failure = Failure("ldap_unwillingToPerform", "unwillingToPerform: the DC said no")
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    for envelope in user_envelopes(count, sealed=True):
        headers = dead_letter_headers(
            {}, failure, routing_key=envelope.type, tenant=envelope.tenant, worker="bench:1"
        )
        channel.basic_publish(
            topology.DEAD_LETTER_EXCHANGE,
            envelope.type,
            encode(envelope),
            pika.BasicProperties(
                content_type="application/msgpack",
                message_id=envelope.id,
                delivery_mode=pika.DeliveryMode.Persistent,
                headers=headers,
            ),
        )
    connection.close()


def depths(url: str) -> tuple[int, int]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    dlq = channel.queue_declare(topology.DEAD_LETTER_QUEUE, passive=True).method.message_count
    work = channel.queue_declare(topology.WORK_QUEUE, passive=True).method.message_count
    connection.close()
    return dlq, work


def ours(url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    subprocess.run(
        [str(REPO / ".venv" / "bin" / "provisioner"), "dlq", "replay", "--all"],
        env={**env, "PROVISIONER_AMQP_URL": url},
        stdout=subprocess.DEVNULL,
        check=True,
    )


def raw_get(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    while True:
        method, properties, body = channel.basic_get(topology.DEAD_LETTER_QUEUE)
        if method is None:
            break
        channel.basic_publish("", topology.WORK_QUEUE, body, properties, mandatory=True)
        channel.basic_ack(method.delivery_tag)
    connection.close()


class Shovel:
    """Consume the DLQ, re-publish each message, ack it once its publish is confirmed."""

    def __init__(self, url: str, count: int) -> None:
        self.count, self.moved = count, 0
        self.sequence = 0
        self.pending: dict[int, int] = {}  # publish sequence number -> delivery tag
        self.connection = pika.SelectConnection(
            pika.URLParameters(url), on_open_callback=self._opened
        )

    def run(self) -> None:
        self.connection.ioloop.start()

    def _opened(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._channel)

    def _channel(self, channel: pika.channel.Channel) -> None:
        self.channel = channel
        channel.confirm_delivery(self._confirmed)
        channel.basic_qos(prefetch_count=PREFETCH)
        channel.basic_consume(topology.DEAD_LETTER_QUEUE, self._delivered)

    def _delivered(
        self,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        channel.basic_publish("", topology.WORK_QUEUE, body, properties, mandatory=True)
        self.sequence += 1
        self.pending[self.sequence] = method.delivery_tag

    def _confirmed(self, frame: Any) -> None:
        method = frame.method
        assert isinstance(method, pika.spec.Basic.Ack), "a re-publish was nacked"
        done = (
            [n for n in self.pending if n <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        for number in done:
            self.channel.basic_ack(self.pending.pop(number))
            self.moved += 1
        if self.moved == self.count:
            self.connection.close()
            self.connection.ioloop.stop()


def measure(url: str, count: int, move: Callable[[], None]) -> float:
    fill(url, count)
    assert depths(url) == (count, 0), depths(url)
    started = time.perf_counter()
    move()
    elapsed = time.perf_counter() - started
    assert depths(url) == (0, count), depths(url)  # all moved, none twice
    connection = pika.BlockingConnection(pika.URLParameters(url))
    connection.channel().queue_purge(topology.WORK_QUEUE)
    connection.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    n = args.messages
    with bench_vhost() as url:
        rates = {
            "`provisioner dlq replay --all`": measure(url, n, lambda: ours(url)),
            "raw pika, get + confirm each": measure(url, n, lambda: raw_get(url)),
            "raw pika, consume + confirms in flight": measure(url, n, lambda: Shovel(url, n).run()),
        }
    first = next(iter(rates.values()))
    print(f"## DLQ replay: {n:,} dead letters into the work queue (quorum queues)\n")
    print("| replay | messages/s | ours / this |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {first / rate:.2f} |")
    print(f"\n{n:,} in {n / first:.1f} s through the command, its start-up included.")


if __name__ == "__main__":
    main()
