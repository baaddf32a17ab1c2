"""Latency from publish to result event, p50 and p99, at half the maximum throughput.

On the local platform (real RabbitMQ, real Samba), with the demo's fleet of two worker
processes, for ``user.created`` (sealed password, 10 tenants):

1. the maximum: a burst of ``--burst`` users, published at once; users/s from the first
   publish to the last result;
2. the latency: users published one at a time at half that rate for ``--seconds``; for
   each, from just before its publish to the moment its result event is read from a
   queue bound to ``provisioning.results``.

The baseline, measured in the same run: the time the directory itself takes for one
user's writes (the four writes of the fleet, made by a bare ldap3 loop on one LDAPS
connection, each user timed alone): the floor under any pipeline's latency.

Run after ``deploy/local/platform up`` (with no fleet running):
``.venv/bin/python -m bench.latency [--burst N] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import pika

from bench.common import PASSWORD, REPO, fleet, load_settings, raw_user_writes
from bench.common import broker as common_broker
from bench.writes import Bench, raw_connection
from messages.amqp import user_of
from messages.envelope import Envelope, encode
from messages.publisher import EVENTS_EXCHANGE, properties_for, publish_all
from messages.results import RESULTS_EXCHANGE, decode_result

TENANTS = 10
PROCESSES = 2
QUEUE = "provisioning.results.bench-latency"  # a name the results account may declare


class Arrivals:
    """A thread reading result events; when each message's result arrived."""

    def __init__(self, broker: pika.ConnectionParameters) -> None:
        self.at: dict[str, float] = {}
        self._stop = threading.Event()
        self._connection = pika.BlockingConnection(broker)
        channel = self._connection.channel()
        channel.queue_declare(QUEUE, durable=True)
        channel.queue_bind(QUEUE, RESULTS_EXCHANGE, routing_key="user.created.*")
        channel.queue_purge(QUEUE)
        self._channel = channel
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for method, _, body in self._channel.consume(QUEUE, auto_ack=True, inactivity_timeout=0.1):
            if self._stop.is_set():
                break
            if method is not None:
                self.at[str(decode_result(body).in_reply_to)] = time.perf_counter()
        self._channel.cancel()

    def wait_for(self, ids: list[str], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while any(i not in self.at for i in ids):
            if time.monotonic() > deadline:
                raise TimeoutError("results missing")
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._connection.close()


def users(bench: Bench, tenants: list[str], count: int, prefix: str) -> list[Envelope]:
    return [
        bench.event(
            "user.created",
            {
                "tenant": tenants[i % len(tenants)],
                "username": f"{prefix}{i:05d}",
                "given_name": "Lat",
                "surname": str(i),
                "password": PASSWORD,
            },
        )
        for i in range(count)
    ]


def paced(
    broker: pika.ConnectionParameters, batch: list[Envelope], rate: float
) -> dict[str, float]:
    """Publish one at a time at ``rate``/s (each confirmed); when each publish began."""
    connection = pika.BlockingConnection(broker)
    channel = connection.channel()
    channel.confirm_delivery()
    sent: dict[str, float] = {}
    start = time.perf_counter()
    for i, envelope in enumerate(batch):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[envelope.id] = time.perf_counter()
        channel.basic_publish(
            EVENTS_EXCHANGE,
            envelope.type,
            encode(envelope),
            properties_for(envelope, user_of(broker)),
        )
    connection.close()
    return sent


def raw_service_times(bench: Bench, count: int) -> list[float]:
    conn = raw_connection(bench.settings)
    tenants = [bench.new_tenant() for _ in range(TENANTS)]
    counts = dict.fromkeys(tenants, 1)
    times = []
    try:
        for i in range(count):
            tenant = tenants[i % TENANTS]
            started = time.perf_counter()
            raw_user_writes(
                conn, bench.settings.ldap_base_dn, tenant, f"s{i:05d}", counts[tenant], record=True
            )
            times.append(time.perf_counter() - started)
            counts[tenant] += 1
    finally:
        conn.unbind()
        for tenant in tenants:
            bench.delete_tenant(tenant)
    return times


def quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    bench = Bench(load_settings())
    url = common_broker("portal")  # user.created is the portal's to publish
    raw = raw_service_times(bench, 200)
    tenants = [bench.new_tenant() for _ in range(TENANTS)]
    arrivals = Arrivals(common_broker("results"))
    try:
        with fleet(PROCESSES, REPO / ".state" / "bench" / "latency-fleet.log"):
            burst = users(bench, tenants, args.burst, "b")
            started = time.perf_counter()
            publish_all(url, ((e.id, e) for e in burst))
            arrivals.wait_for([e.id for e in burst])
            maximum = args.burst / (time.perf_counter() - started)
            rate = maximum / 2
            batch = users(bench, tenants, round(rate * args.seconds), "p")
            sent = paced(url, batch, rate)
            arrivals.wait_for(list(sent))
    finally:
        arrivals.close()
        for tenant in tenants:
            bench.delete_tenant(tenant)
        bench.directory.close()
    latencies = [arrivals.at[i] - t for i, t in sent.items()]
    p50, p99 = quantiles(latencies)
    r50, r99 = quantiles(raw)
    print(
        f"## Publish to result, user.created into Samba, {PROCESSES} worker processes\n\n"
        f"Maximum (burst of {args.burst}): {maximum:.1f} users/s; "
        f"paced at half: {rate:.1f} users/s for {args.seconds:.0f} s ({len(batch)} users).\n"
    )
    print("| | p50 | p99 |")
    print("|---|---:|---:|")
    print(f"| fleet: publish to result event | {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms |")
    print(
        "| baseline: the directory's own writes for one user "
        f"| {r50 * 1000:.1f} ms | {r99 * 1000:.1f} ms |"
    )
    print(f"| fleet / baseline | {p50 / r50:.2f} | {p99 / r99:.2f} |")


if __name__ == "__main__":
    main()
