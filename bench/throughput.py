"""End-to-end user.created throughput into Samba: a fleet of 1, 2 and 4 worker processes
against a raw ldap3 loop making the same LDAP writes, measured in the same run.

The fleet path: events published (passwords sealed) before the clock starts, the
workers already consuming; the clock runs from the first publish until the last result
event is in.  Each user costs the fleet four writes: the quota swap, one add carrying
names, UPN, sAMAccountName, password and the enabled flag, the membership, and the
idempotency record; and a lookup of the records before.

The baseline makes the same four writes per user over the same kind of connection
(one LDAPS bind, the CA checked), in one loop, with nothing else: no broker, no
decoding, no checks.  Runs are interleaved (raw, fleet, raw, fleet, ...) and each fleet
run is compared with the raw runs on either side, because Samba's writes slow down as
the directory grows.  It runs on one connection, because Samba serialises writes (two
connections were measured never to be faster than one).

With ``--against REV``, every round also runs the worker at the git revision ``REV``
(from a worktree, same interpreter and libraries) at each process count, flanked by raw
runs like this one's: what a change did to the ratio is measured in the same run, on
the same directory, instead of against a figure from another hour.

Run after ``deploy/local/platform up`` (with no fleet running):
``.venv/bin/python -m bench.throughput [--users N] [--rounds R] [--processes 1,2,4]
[--against REV]``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any

import pika
from prometheus_client.parser import text_string_to_metric_families

from bench.common import PASSWORD, REPO, fleet, load_settings, raw_user_writes, worktree
from bench.common import broker as common_broker
from bench.writes import Bench, raw_connection
from messages.publisher import publish_all

RESULTS = "provisioning.results.bench-throughput"  # a name the results account may declare
TENANTS = 10
METRICS_PORT = 9480


FINAL = ("succeeded", "duplicate", "dead_lettered")  # a retry scheduled is a result, no answer


def results_channel(broker: pika.ConnectionParameters) -> tuple[pika.BlockingConnection, Any]:
    """An empty queue of the final answers to user.created."""
    connection = pika.BlockingConnection(broker)
    channel = connection.channel()
    channel.queue_declare(RESULTS, durable=True)
    for outcome in FINAL:
        channel.queue_bind(RESULTS, "provisioning.results", routing_key=f"user.created.{outcome}")
    channel.queue_purge(RESULTS)
    return connection, channel


def scrape(processes: int) -> dict[str, float]:
    """Seconds the fleet's workers spent, summed from their own metrics: ``message`` (in
    all), ``ldap`` (in LDAP operations), ``ldap:<operation>``, ``cpu`` (their CPU time
    since they started); and ``messages``."""
    out: dict[str, float] = {}
    for k in range(processes):
        text = urllib.request.urlopen(
            f"http://127.0.0.1:{METRICS_PORT + k}/metrics", timeout=5
        ).read()
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                key = None
                if sample.name == "provisioner_processing_seconds_sum":
                    key = "message"
                elif sample.name == "provisioner_processing_seconds_count":
                    key = "messages"
                elif sample.name == "provisioner_ldap_operation_seconds_sum":
                    key = f"ldap:{sample.labels['operation']}"
                elif sample.name == "process_cpu_seconds_total":
                    key = "cpu"
                if key:
                    out[key] = out.get(key, 0.0) + sample.value
    out["ldap"] = sum(v for k, v in out.items() if k.startswith("ldap:"))
    return out


def fleet_rate(
    bench: Bench, processes: int, users: int, log: Path, tree: Path | None = None
) -> tuple[float, dict[str, float]]:
    """Users/s, and where the workers' time went (:func:`scrape`)."""
    tenants = [bench.new_tenant() for _ in range(TENANTS)]
    try:
        envelopes = [
            bench.event(
                "user.created",
                {
                    "tenant": tenants[i % TENANTS],
                    "username": f"f{i:05d}",
                    "given_name": "Fleet",
                    "surname": str(i),
                    "password": PASSWORD,
                },
            )
            for i in range(users)
        ]
        connection, channel = results_channel(common_broker("results"))
        try:
            with fleet(processes, log, METRICS_PORT, tree=tree):
                started = time.perf_counter()
                portal = common_broker("portal")  # user.created is the portal's
                publish_all(portal, ((e.id, e) for e in envelopes))
                while channel.queue_declare(RESULTS, passive=True).method.message_count < users:
                    time.sleep(0.02)
                elapsed = time.perf_counter() - started
                split = scrape(processes)
        finally:
            connection.close()
        return users / elapsed, split
    finally:
        for tenant in tenants:
            bench.delete_tenant(tenant)


def raw_rate(bench: Bench, users: int) -> float:
    """The same four writes per user, on one connection, and nothing else."""
    conn = raw_connection(bench.settings)
    base = bench.settings.ldap_base_dn
    tenants = [bench.new_tenant() for _ in range(TENANTS)]
    counts = dict.fromkeys(tenants, 1)
    try:
        started = time.perf_counter()
        for i in range(users):
            tenant = tenants[i % TENANTS]
            raw_user_writes(conn, base, tenant, f"r{i:05d}", counts[tenant], record=True)
            counts[tenant] += 1
        return users / (time.perf_counter() - started)
    finally:
        conn.unbind()
        for tenant in tenants:
            bench.delete_tenant(tenant)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", default="1,2,4", help="fleet sizes, comma-separated")
    parser.add_argument("--against", help="also the worker at this git revision, each round")
    args = parser.parse_args()
    sizes = [int(n) for n in args.processes.split(",")]
    bench = Bench(load_settings())
    log = REPO / ".state" / "bench" / "throughput-fleet.log"
    with contextlib.ExitStack() as stack:
        trees: dict[str, Path | None] = {"": None}
        if args.against:
            trees[f", at {args.against}"] = stack.enter_context(worktree(args.against))
        # Interleaved, because the directory slows as it grows: each fleet run is compared
        # with the raw runs just before and after it, on a directory of the same size.
        raws = [raw_rate(bench, args.users)]
        runs = [(n, label) for n in sizes for label in trees]
        ratios: dict[tuple[int, str], list[float]] = {run: [] for run in runs}
        rates: dict[tuple[int, str], list[float]] = {run: [] for run in runs}
        one: list[dict[str, float]] = []  # where a 1-process worker's time went, each round
        for _ in range(args.rounds):
            for n, label in runs:
                rate, split = fleet_rate(bench, n, args.users, log, trees[label])
                if n == 1 and not label:
                    one.append(split)
                raws.append(raw_rate(bench, args.users))
                rates[n, label].append(rate)
                ratios[n, label].append(rate / ((raws[-2] + raws[-1]) / 2))
    print(
        f"## user.created end to end into Samba, {args.users} users over {TENANTS} tenants "
        f"per run, {args.rounds} rounds\n"
    )
    print("| path | users/s (median) | ratio to the raw runs around it: median | min - max |")
    print("|---|---:|---:|---|")
    for (n, label), values in ratios.items():
        path = f"fleet, {n} process{'es' if n > 1 else ''}{label}"
        print(
            f"| {path} | {statistics.median(rates[n, label]):.1f} "
            f"| {statistics.median(values):.2f} | {min(values):.2f} - {max(values):.2f} |"
        )
    print("\nraw ldap3 loop runs, in order (users/s): " + ", ".join(f"{r:.1f}" for r in raws))
    if one:
        _where_the_time_went(one)
    bench.directory.close()


def _where_the_time_went(one: list[dict[str, float]]) -> None:
    per = {k: sum(x[k] for x in one) / sum(x["messages"] for x in one) * 1000 for k in one[0]}
    ops = ", ".join(
        f"{k[5:]} {v:.1f}" for k, v in sorted(per.items()) if k.startswith("ldap:") and v >= 0.05
    )
    print(
        f"\nWhere a 1-process worker's time goes, from its own metrics (ms per message): "
        f"{per['message']:.1f} in all, {per['ldap']:.1f} in LDAP ({ops}), "
        f"{per['message'] - per['ldap']:.1f} in the rest (decode, unseal, plan, result "
        "confirmed, ack, log)."
    )


if __name__ == "__main__":
    main()
