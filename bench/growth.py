"""Cost as the work grows: one directory filled to 1k, 5k and 20k users over 50 tenants,
and at each size the fleet against the raw same-writes loop.

The directory is filled through the fleet itself (2 worker processes, every user a
``user.created`` into one of the 50 tenants).  At each size, on a directory of that size:

- the raw same-writes loop (the four writes of a user, :func:`bench.common.raw_user_writes`,
  one connection, nothing else) adding ``--sample`` users to the same 50 tenants, then one
  worker process adding as many, then the raw loop again: fleet ÷ the mean of the two raw
  runs around it.  Both write into the same groups and the same settings objects, which
  grow with their tenants;
- the worker's own milliseconds per user: its ``provisioner_processing_seconds`` minus its
  ``provisioner_ldap_operation_seconds``, from its own metrics; beside it, the CPU time
  the worker process used per user (``process_cpu_seconds_total`` over the run, ldap3's
  encoding and TLS included), and the raw loop's (``time.process_time`` of its process):
  own time that grows while the CPU time does not is time the worker waited for a core,
  not work it did;
- the tenant's state read (``msDS-Settings`` of its settings object: its settings and
  counter, not its per-user lists), median of ``--probes`` reads;
- the idempotency lookup (:meth:`workers.delivery.idempotency.Ledger.lookup`, the search
  every message starts with: its key, and any later event for the same user) for a user
  not made yet, median of ``--probes`` calls;
- the sAMAccountName check as the fleet meets it: the DC refuses an add whose
  sAMAccountName is taken (the uniqueness check is the DC's, inside the add), median of
  ``--probes`` refused adds; beside it, a subtree search for one sAMAccountName.

The size is every user the benchmark made, the raw loop's included (they stay, with
their idempotency records, as the fleet's do).

Not part of ``python -m bench``: it takes about 20 minutes for 20k users (the DC adds a
user with a password at about 20 a second).  Run it on a fresh platform of its own:
``deploy/local/platform bench growth [--sizes 1000,5000,20000] [--sample N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import ldap3

from bench.common import PASSWORD, REPO, fleet, load_settings, raw_user_writes
from bench.common import broker as common_broker
from bench.throughput import METRICS_PORT, RESULTS, results_channel, scrape
from bench.writes import Bench, raw_connection
from messages.envelope import Envelope
from messages.publisher import publish_all
from workers.broker import topology
from workers.delivery.idempotency import Ledger
from workers.directory.escaping import filter_value
from workers.directory.port import DirectoryRefused, Scope
from workers.provisioning import names

TENANTS = 50
LOG = REPO / ".state" / "bench" / "growth-fleet.log"


class Growth:
    def __init__(self, bench: Bench, tenants: int) -> None:
        self.bench = bench
        self.tenants = [bench.new_tenant() for _ in range(tenants)]
        self.made = 0  # users made in the tenants, by the fleet and by the raw loop
        self.raw_runs = 0

    def envelope(self, i: int) -> Envelope:
        return self.bench.event(
            "user.created",
            {
                "tenant": self.tenants[i % len(self.tenants)],
                "username": f"g{i:06d}",
                "given_name": "Growth",
                "surname": str(i),
                "password": PASSWORD,
            },
        )

    def add(self, count: int, processes: int) -> tuple[float, dict[str, float]]:
        """``count`` more users through a fleet of ``processes``: users/s (first publish to
        last answer) and where its workers' time went (:func:`bench.throughput.scrape`)."""
        envelopes = [self.envelope(self.made + k) for k in range(count)]
        connection, channel = results_channel(common_broker("results"))
        try:
            waiting = channel.queue_declare(topology.WORK_QUEUE, passive=True).method.message_count
            assert not waiting, (
                f"{topology.WORK_QUEUE} holds {waiting} messages already: run on a platform "
                "of its own (deploy/local/platform bench growth)"
            )
            with fleet(processes, LOG, METRICS_PORT):
                idle = scrape(processes)  # what starting took, before any message
                started = time.perf_counter()
                publish_all(common_broker("portal"), ((e.id, e) for e in envelopes))
                while channel.queue_declare(RESULTS, passive=True).method.message_count < count:
                    time.sleep(0.05)
                elapsed = time.perf_counter() - started
                split = scrape(processes)
                split["cpu"] -= idle["cpu"]
            failed = count - succeeded(channel)
            assert not failed, f"{failed} of {count} users were not made: see {LOG}"
        finally:
            connection.close()
        self.made += count
        return count / elapsed, split

    def raw(self, count: int) -> tuple[float, float]:
        """``count`` more users by the raw same-writes loop, in the same tenants: users/s,
        and the CPU ms a user this process spent on them (ldap3's encoding and TLS)."""
        conn = raw_connection(self.bench.settings)
        base = self.bench.settings.ldap_base_dn
        # Read before the clock.
        counts = {t: self.bench.tenant_state(t).users for t in self.tenants}
        self.raw_runs += 1
        try:
            started, cpu = time.perf_counter(), time.process_time()
            for i in range(count):
                tenant = self.tenants[i % len(self.tenants)]
                username = f"r{self.raw_runs}x{i:05d}"
                raw_user_writes(conn, base, tenant, username, counts[tenant], record=True)
                counts[tenant] += 1
            rate = count / (time.perf_counter() - started)
            cpu_ms = (time.process_time() - cpu) / count * 1000
        finally:
            conn.unbind()
        self.made += count
        return rate, cpu_ms

    def state_ms(self, probes: int) -> float:
        """The engine's read of a tenant's state (its settings and counter)."""
        return median_ms(
            lambda k: self.bench.tenant_state(self.tenants[k % len(self.tenants)]), probes
        )

    def lookup_ms(self, probes: int) -> float:
        """The idempotency lookup of a user not made yet (its entity exists: its tenant)."""
        ledger = Ledger(self.bench.directory, self.bench.settings.ldap_base_dn)
        envelopes = [self.envelope(self.made + 10**6 + k) for k in range(probes)]
        return median_ms(lambda k: ledger.lookup(envelopes[k]), probes)

    def sam_check_ms(self, probes: int) -> tuple[float, float]:
        """(a refused add whose sAMAccountName is taken, a subtree search for one)."""
        directory, base = self.bench.directory, self.bench.settings.ldap_base_dn
        tenant = self.tenants[0]
        first = directory.read(names.user_dn(tenant, "g000000", base), ["sAMAccountName"])
        assert first is not None, "the first user the fleet made is missing"
        taken = str(first.first("sAMAccountName"))

        def refused(k: int) -> None:
            try:
                directory.add(
                    names.user_dn(tenant, f"probe{k}", base),
                    ["top", "person", "organizationalPerson", "user"],
                    {"sAMAccountName": taken, "userPrincipalName": f"probe{k}@{tenant}.example"},
                )
            except DirectoryRefused as exc:
                if exc.result != "entryAlreadyExists":
                    raise
            else:
                raise AssertionError(f"the DC took a second {taken}")

        def search(_k: int) -> None:
            found = directory.search(
                base, f"(sAMAccountName={filter_value(taken)})", Scope.SUBTREE, ["cn"]
            )
            assert len(found) == 1, found

        return median_ms(refused, probes), median_ms(search, probes)

    def users_in_directory(self) -> int:
        """Every user object below the tenants, counted by the DC (paged)."""
        conn = self.bench.directory._conn  # noqa: SLF001 - a count, which the port does not offer
        entries = conn.extend.standard.paged_search(
            names.tenants_dn(self.bench.settings.ldap_base_dn),
            "(&(objectCategory=person)(objectClass=user))",
            ldap3.SUBTREE,
            attributes=[],
            paged_size=1000,
            generator=True,
        )
        return sum(1 for e in entries if e.get("type") == "searchResEntry")


def succeeded(channel: Any) -> int:
    """How many of the answers in the results queue are ``succeeded`` (then empties it)."""
    count = 0
    while True:
        method, _props, _body = channel.basic_get(RESULTS, auto_ack=True)
        if method is None:
            return count
        count += method.routing_key == "user.created.succeeded"


def median_ms(call: Callable[[int], object], probes: int) -> float:
    times = []
    for k in range(probes):
        started = time.perf_counter()
        call(k)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000", help="users, comma-separated")
    parser.add_argument("--sample", type=int, default=300, help="users per measured run")
    parser.add_argument("--probes", type=int, default=30, help="lookups and checks per size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    began = time.monotonic()
    bench = Bench(load_settings())
    growth = Growth(bench, TENANTS)
    rows = []
    for size in sizes:
        fill = size - args.sample - growth.made  # the fleet's measured run starts at ``size``
        if fill > 0:
            rate, _ = growth.add(fill, processes=2)
            print(f"filled {fill} users at {rate:.1f}/s; {growth.made} made", flush=True)
            bench.reconnect()  # idle while the fleet filled
        raw_before, raw_cpu_before = growth.raw(args.sample)
        present = growth.users_in_directory()
        rate, split = growth.add(args.sample, processes=1)
        raw_after, raw_cpu_after = growth.raw(args.sample)
        raw_cpu = (raw_cpu_before + raw_cpu_after) / 2
        own = (split["message"] - split["ldap"]) / split["messages"] * 1000
        ldap = split["ldap"] / split["messages"] * 1000
        cpu = split["cpu"] / split["messages"] * 1000
        by_operation = ", ".join(
            f"{key[5:]} {value / split['messages'] * 1000:.1f}"
            for key, value in sorted(split.items())
            if key.startswith("ldap:") and value
        )
        lookup = growth.lookup_ms(args.probes)
        state = growth.state_ms(args.probes)
        refused, search = growth.sam_check_ms(args.probes)
        raw = (raw_before + raw_after) / 2
        row = (size, present, rate, raw, own, cpu, raw_cpu, ldap, lookup, state)
        rows.append((*row, refused, search))
        print(
            f"size {size}: {present} users in the directory, fleet {rate:.1f}/s, raw "
            f"{raw_before:.1f} and {raw_after:.1f}/s, own {own:.2f} ms, CPU {cpu:.2f} ms (raw "
            f"{raw_cpu:.2f}), "
            f"LDAP {ldap:.1f} ms "
            f"({by_operation}), "
            f"lookup {lookup:.2f} ms, state read {state:.2f} ms, sAM refused {refused:.2f} "
            f"ms, search {search:.2f} ms",
            flush=True,
        )
    minutes = (time.monotonic() - began) / 60
    print(
        f"\n## Cost as the directory grows: {TENANTS} tenants, one worker process measured "
        f"on {args.sample} users at each size, {minutes:.0f} min in all\n"
    )
    print(
        "| size | users in the directory | fleet users/s | raw users/s | fleet / raw "
        "| fleet's own ms a user | CPU ms a user: worker | raw loop | LDAP ms a user "
        "| idempotency lookup ms "
        "| tenant state read ms | sAMAccountName taken: add refused ms "
        "| sAMAccountName search ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, present, rate, raw, own, cpu, raw_cpu, ldap, lookup, state, refused, search in rows:
        print(
            f"| {size:,} | {present:,} | {rate:.1f} | {raw:.1f} | {rate / raw:.2f} | {own:.2f} "
            f"| {cpu:.2f} | {raw_cpu:.2f} | {ldap:.1f} | {lookup:.2f} | {state:.2f} "
            f"| {refused:.2f} | {search:.2f} |"
        )
    bench.directory.close()


if __name__ == "__main__":
    main()
