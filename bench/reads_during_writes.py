"""The fleet's two reads while the directory writes: could one worker make the next
message's reads during this message's writes, on a second connection?

The reads are the two every ``user.created`` makes before it writes: the idempotency
lookup (:meth:`workers.delivery.idempotency.Ledger.lookup`) and the tenant's state read
(:func:`workers.provisioning.tenant_state.read`), made through the fleet's own directory
edge.  The writes are the raw loop's (:func:`bench.common.raw_user_writes`), made by
another process on its own connection, as fast as it can, into other tenants.  In turns,
in one run:

- the two reads alone, with nothing else on the DC: p50 and p90 of the pair, one pair
  every 40 ms (about one per user the DC makes, as a worker reading ahead would read);
- the writer alone: users/s;
- both together: the pair's p50 and p90 while the writer writes, and the writer's users/s
  while the reads are made.

Read-ahead pays if the pair stays near its idle time and the writer keeps its rate: then
the reads cost a worker nothing it waits for.

Run after ``deploy/local/platform up`` (with no fleet running):
``.venv/bin/python -m bench.reads_during_writes [--seconds S] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from multiprocessing.synchronize import Event
from typing import Any

from bench.common import PASSWORD, load_settings, raw_user_writes
from bench.writes import Bench, raw_connection
from workers.delivery.idempotency import Ledger

TENANTS = 10
# One pair of reads every 40 ms: about one per user the DC makes, as a worker reading
# ahead would read.
PACE = 0.04
# A fresh interpreter for the writer: a forked one would share this one's TLS connection.
SPAWN = multiprocessing.get_context("spawn")


def write(tenants: list[str], run: int, window: Event, stop: Event, rate: Any) -> None:
    """The raw loop into ``tenants`` until ``stop``; in ``rate``, its users/s from the moment
    ``window`` was set to ``stop``."""
    settings = load_settings()
    bench = Bench(settings)
    counts = {t: bench.tenant_state(t).users for t in tenants}
    conn = raw_connection(settings)
    i, opened = 0, None
    try:
        while not stop.is_set():
            if opened is None and window.is_set():
                opened = (i, time.perf_counter())
            tenant = tenants[i % len(tenants)]
            raw_user_writes(
                conn, settings.ldap_base_dn, tenant, f"w{run}x{i:05d}", counts[tenant], record=True
            )
            counts[tenant] += 1
            i += 1
        assert opened is not None, "the window closed before it opened"
        rate.value = (i - opened[0]) / (time.perf_counter() - opened[1])
    finally:
        conn.unbind()
        bench.directory.close()


class Reads:
    """The fleet's two reads for a user not made yet, in tenants of their own."""

    def __init__(self, bench: Bench, tenants: list[str]) -> None:
        self.bench, self.tenants = bench, tenants
        self.ledger = Ledger(bench.directory, bench.settings.ldap_base_dn)
        self.made = 0

    def pair(self) -> float:
        tenant = self.tenants[self.made % len(self.tenants)]
        self.made += 1
        envelope = self.bench.event(
            "user.created",
            {
                "tenant": tenant,
                "username": f"r{self.made:06d}",
                "given_name": "Read",
                "surname": "Ahead",
                "password": PASSWORD,
            },
        )
        started = time.perf_counter()
        self.ledger.lookup(envelope)
        self.bench.tenant_state(tenant)
        return time.perf_counter() - started

    def for_seconds(self, seconds: float) -> list[float]:
        """A pair every :data:`PACE` seconds for ``seconds``."""
        out: list[float] = []
        start = time.monotonic()
        while (due := start + len(out) * PACE) < start + seconds:
            time.sleep(max(0.0, due - time.monotonic()))
            out.append(self.pair())
        return out


def writer_rate(
    tenants: list[str], run: int, seconds: float, reads: Reads | None
) -> tuple[float, list[float]]:
    """Users/s of the writer over ``seconds``, and the pairs read meanwhile (if ``reads``)."""
    window, stop = SPAWN.Event(), SPAWN.Event()
    rate = SPAWN.Value("d", 0.0)
    writer = SPAWN.Process(target=write, args=(tenants, run, window, stop, rate))
    writer.start()
    time.sleep(2)  # connected and writing
    window.set()
    pairs: list[float] = []
    if reads is None:
        time.sleep(seconds)
    else:
        pairs = reads.for_seconds(seconds)
    stop.set()
    writer.join(60)
    assert writer.exitcode == 0, f"the writer failed ({writer.exitcode})"
    return float(rate.value), pairs


def summary(pairs: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(pairs, n=10, method="inclusive")
    return statistics.median(pairs) * 1000, cuts[8] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bench = Bench(load_settings())
    written = [bench.new_tenant() for _ in range(TENANTS)]
    read = [bench.new_tenant() for _ in range(TENANTS)]
    reads = Reads(bench, read)
    rows = []
    try:
        for run in range(args.rounds):
            idle = summary(reads.for_seconds(args.seconds))
            alone, _ = writer_rate(written, 2 * run, args.seconds, None)
            together, pairs = writer_rate(written, 2 * run + 1, args.seconds, reads)
            rows.append((idle, summary(pairs), alone, together))
    finally:
        for tenant in written + read:
            bench.delete_tenant(tenant)
        bench.directory.close()
    print(
        f"## The fleet's two reads (lookup and state read) while another connection writes, "
        f"{args.rounds} rounds of {args.seconds:.0f} s\n"
    )
    print(
        "| round | pair alone: p50 | p90 | pair during writes: p50 | p90 "
        "| writer alone users/s | writer while read users/s | writer ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, ((i50, i90), (b50, b90), alone, together) in enumerate(rows, 1):
        print(
            f"| {k} | {i50:.2f} ms | {i90:.2f} ms | {b50:.2f} ms | {b90:.2f} ms "
            f"| {alone:.1f} | {together:.1f} | {together / alone:.2f} |"
        )


if __name__ == "__main__":
    main()
