"""Bulk publish with confirms in flight, against one confirm per message.

Every variant publishes the same envelopes over one reused connection into the same
quorum work queue (purged between runs), in the same run; the median of the rounds
is reported.  Baselines:

- ``window=1``: the project's own publisher, waiting for each confirm before the next
  publish (the same code, only the pipelining taken away);
- ``pika blocking``: the usual naive loop, ``BlockingChannel.basic_publish`` in confirm
  mode, which waits for each confirm.

Run: ``.venv/bin/python -m bench.publish [--messages N] [--rounds R]`` with RabbitMQ on
127.0.0.1:5672.  It uses a vhost of its own, ``/provisioning-bench``, and deletes it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import pika

from bench.common import AMQP_URL, bench_vhost, user_envelopes
from messages.amqp import user_of
from messages.envelope import Envelope, encode
from messages.publisher import EVENTS_EXCHANGE, properties_for, publish_all
from workers.broker import topology


def purge() -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    connection.channel().queue_purge(topology.WORK_QUEUE)
    connection.close()


def bulk(batch: list[Envelope], window: int) -> None:
    report = publish_all(AMQP_URL, ((e.id, e) for e in batch), window=window)
    assert len(report.confirmed) == len(batch), report.failed[:3]


def pika_blocking(batch: list[Envelope]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    channel.confirm_delivery()
    for envelope in batch:
        channel.basic_publish(
            EVENTS_EXCHANGE,
            envelope.type,
            encode(envelope),
            properties_for(envelope, user_of(pika.URLParameters(AMQP_URL))),
            mandatory=True,
        )
    connection.close()


def measure(run: Callable[[], None], count: int, rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        purge()
        started = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - started))
    purge()
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with bench_vhost():
        batch = user_envelopes(args.messages)
        size = len(encode(batch[0]))
        variants: list[tuple[str, Callable[[], None]]] = [
            ("bulk, window=1000", lambda: bulk(batch, 1000)),
            ("baseline: same publisher, window=1", lambda: bulk(batch, 1)),
            ("baseline: pika BlockingChannel, confirm each", lambda: pika_blocking(batch)),
        ]
        results = [(name, measure(run, args.messages, args.rounds)) for name, run in variants]
    best = results[0][1]
    print(
        f"{args.messages} user.created messages of {size} bytes into a quorum queue, "
        f"median of {args.rounds} rounds\n"
    )
    print("| publisher | messages/s | bulk / this |")
    print("|---|---:|---:|")
    for name, rate in results:
        print(f"| {name} | {rate:,.0f} | {best / rate:.1f}x |")


if __name__ == "__main__":
    main()
