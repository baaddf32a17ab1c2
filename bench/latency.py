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

With ``--against REV`` each round measures the worker at the git revision ``REV`` too
(from a worktree), each run with its own baseline just before it: p99 is noisy from one
run to the next, so a change is judged against the worker before it in the same rounds.

Run after ``deploy/local/platform up`` (with no fleet running):
``.venv/bin/python -m bench.latency [--burst N] [--seconds S] [--rounds R] [--against REV]``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import threading
import time
from pathlib import Path

import pika

from bench.common import PASSWORD, REPO, fleet, load_settings, raw_user_writes, worktree
from bench.common import broker as common_broker
from bench.writes import Bench, raw_connection
from messages.amqp import user_of
from messages.envelope import Envelope, encode
from messages.publisher import EVENTS_EXCHANGE, properties_for, publish_all
from messages.results import RESULTS_EXCHANGE, decode_result

TENANTS = 10
PROCESSES = 2
QUEUE = "provisioning.results.bench-latency"  # a name the results account may declare
LOG = REPO / ".state" / "bench" / "latency-fleet.log"


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


class Fleets:
    """The fleet at each revision measured, on the same tenants and results queue."""

    def __init__(self, bench: Bench, tenants: list[str], arrivals: Arrivals) -> None:
        self.bench, self.tenants, self.arrivals = bench, tenants, arrivals
        self.url = common_broker("portal")  # user.created is the portal's to publish
        self.runs = 0

    def latencies(self, burst: int, seconds: float, tree: Path | None) -> tuple[float, list[float]]:
        """The maximum of a burst, then publish to result for users paced at half of it."""
        with fleet(PROCESSES, LOG, tree=tree):
            maximum = self._burst(burst)
            self.runs += 1
            batch = users(self.bench, self.tenants, round(maximum / 2 * seconds), f"p{self.runs}")
            sent = paced(self.url, batch, maximum / 2)
            self.arrivals.wait_for(list(sent))
        return maximum, [self.arrivals.at[i] - t for i, t in sent.items()]

    def _burst(self, count: int) -> float:
        self.runs += 1
        burst = users(self.bench, self.tenants, count, f"b{self.runs}")
        started = time.perf_counter()
        publish_all(self.url, ((e.id, e) for e in burst))
        self.arrivals.wait_for([e.id for e in burst])
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", help="also the worker at this git revision, each round")
    args = parser.parse_args()
    bench = Bench(load_settings())
    tenants = [bench.new_tenant() for _ in range(TENANTS)]
    arrivals = Arrivals(common_broker("results"))
    rows: list[tuple[str, float, float, float, float, float]] = []
    try:
        with contextlib.ExitStack() as stack:
            trees: dict[str, Path | None] = {"fleet": None}
            if args.against:
                trees[f"fleet at {args.against}"] = stack.enter_context(worktree(args.against))
            fleets = Fleets(bench, tenants, arrivals)
            for _ in range(args.rounds):
                for label, tree in trees.items():
                    raw = quantiles(raw_service_times(bench, 200))
                    maximum, latencies = fleets.latencies(args.burst, args.seconds, tree)
                    rows.append((label, maximum, *quantiles(latencies), *raw))
    finally:
        arrivals.close()
        for tenant in tenants:
            bench.delete_tenant(tenant)
        bench.directory.close()
    print(
        f"## Publish to result, user.created into Samba, {PROCESSES} worker processes, "
        f"paced at half of each run's burst of {args.burst} for {args.seconds:.0f} s\n"
    )
    print(
        "| worker | burst users/s | p50 | p99 | the directory's own writes for one user, "
        "just before: p50 | p99 | fleet / directory: p50 | p99 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, maximum, p50, p99, r50, r99 in rows:
        print(
            f"| {label} | {maximum:.1f} | {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms "
            f"| {r50 * 1000:.1f} ms | {r99 * 1000:.1f} ms | {p50 / r50:.2f} | {p99 / r99:.2f} |"
        )


if __name__ == "__main__":
    main()
