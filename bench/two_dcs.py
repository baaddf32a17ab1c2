"""user.created end to end with the fleet on one DC and on two (each tenant pinned to one
by ``workers.delivery.pinning``), and how long the tenants of a DC that stops take to
fail over to the other and to come back.

Rates: rounds of the same fleet and the same work (200 users over 10 tenants, five
preferring each DC), interleaved: on the platform's DC alone with 2 processes (the
baseline: the fleet as it runs today, DC2 replicating from it), on both DCs with 2
processes and with 4; and, to show what replication costs on this machine, on the DC
alone with DC2 stopped.  On two
DCs each job also stakes and settles its fence on the other DC (two small writes there)
and reads its marks: that is the price of the proof, and it is in these figures.

Failover: on both DCs with 4 processes, 400 users over the same kind of tenants; once
100 are answered, DC1 stops (``deploy/local/platform dc1 stop``) for 20 s and starts
again (``dc1 start``, which forces a replication each way).  From the fleet's log: the
first success of a tenant preferring DC1 on DC2 after the stop, and its first success
on DC1 again after the start; from the result events: the longest gap between answers.

Run on the bench platform: ``deploy/local/platform bench two-dcs`` (it joins the second
DC itself, about 20 s).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import secrets
import statistics
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import PASSWORD, REPO, fleet, load_settings
from bench.common import broker as common_broker
from bench.latency import users
from bench.throughput import RESULTS, results_channel
from bench.writes import Bench
from messages.publisher import publish_all
from workers.delivery.pinning import tenant_order
from workers.directory.ldap_directory import LdapDirectory
from workers.directory.port import DirectoryUnavailable
from workers.runtime.settings import Settings

PLATFORM = REPO / "deploy" / "local" / "platform"
PER_DC = 5  # tenants preferring each DC


def platform(*args: str) -> str:
    done = subprocess.run(
        [str(PLATFORM), *args], capture_output=True, text=True, check=False, env=os.environ
    )
    if done.returncode != 0:
        raise RuntimeError(f"platform {' '.join(args)}: {done.stderr}")
    return done.stdout


def two_dc_settings() -> dict[str, str]:
    path = Path(platform("dc2", "env").strip())
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value.strip("'")
    return env


def pinned_tenants(bench: Bench, names: list[str], *, replica: bool = True) -> list[str]:
    """``PER_DC`` new tenants preferring each DC, made on DC1 and replicated to DC2
    (unless ``replica`` is off: DC2 is stopped)."""
    wanted: dict[str, list[str]] = {n: [] for n in names}
    while any(len(v) < PER_DC for v in wanted.values()):
        tenant = f"b2-{secrets.token_hex(4)}"
        first = tenant_order(tenant, names)[0]
        if len(wanted[first]) < PER_DC:
            wanted[first].append(tenant)
    tenants = [t for v in wanted.values() for t in v]
    for tenant in tenants:
        admin = {"username": "admin", "given_name": "B", "surname": "M", "password": PASSWORD}
        data = {"tenant": tenant, "name": tenant, "domains": [f"{tenant}.example"], "admin": admin}
        bench.run(bench.event("tenant.created", data))
    if replica:
        platform("dc2", "sync")
    return tenants


def remove(bench: Bench, tenants: list[str], *, replica: bool = True) -> None:
    """Delete the run's tenants on DC1 (the bench's own connection), once DC1 holds what
    the fleet wrote on DC2 for them."""
    if replica:
        platform("dc2", "sync")
    with contextlib.suppress(DirectoryUnavailable):
        bench.directory.close()
    bench.directory = LdapDirectory.connect(bench.settings)  # DC1 may have restarted
    for tenant in tenants:
        bench.delete_tenant(tenant)
    if replica:
        platform("dc2", "sync")


def rate(
    bench: Bench,
    names: list[str],
    settings: dict[str, str],
    processes: int,
    count: int,
    *,
    replica: bool = True,
) -> float:
    tenants = pinned_tenants(bench, names, replica=replica)
    envelopes = users(bench, tenants, count, "r")
    connection, channel = results_channel(common_broker("results"))
    log = REPO / ".state" / "bench" / "two-dcs-fleet.log"
    try:
        with fleet(processes, log, settings=settings):
            started = time.perf_counter()
            publish_all(common_broker("portal"), ((e.id, e) for e in envelopes))
            while channel.queue_declare(RESULTS, passive=True).method.message_count < count:
                time.sleep(0.02)
            return count / (time.perf_counter() - started)
    finally:
        connection.close()
        remove(bench, tenants, replica=replica)


def logged(log: Path, since: float) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "message.succeeded" and "timestamp" in entry:
            entry["at"] = datetime.fromisoformat(entry["timestamp"]).timestamp()
            if entry["at"] >= since:
                out.append(entry)
    return out


def failover(bench: Bench, names: list[str], settings: dict[str, str], count: int) -> list[str]:
    tenants = pinned_tenants(bench, names)
    on_dc1 = {t for t in tenants if tenant_order(t, names)[0] == names[0]}
    envelopes = users(bench, tenants, count, "f")
    connection, channel = results_channel(common_broker("results"))
    log = REPO / ".state" / "bench" / "two-dcs-failover.log"
    log.unlink(missing_ok=True)
    answered_at: list[float] = []
    try:
        with fleet(4, log, settings={**settings, "PROVISIONER_LOG_LEVEL": "info"}):
            began = time.time()
            publish_all(common_broker("portal"), ((e.id, e) for e in envelopes))
            stopped = started = 0.0
            while len(answered_at) < count:
                method, _, _ = channel.basic_get(RESULTS, auto_ack=True)
                if method is None:
                    time.sleep(0.01)
                else:
                    answered_at.append(time.time())
                if len(answered_at) >= count // 4 and not stopped:
                    platform("dc1", "stop")
                    stopped = time.time()
                    time.sleep(20)
                    platform("dc1", "start")
                    started = time.time()
            ended = time.time()
    finally:
        connection.close()
        remove(bench, tenants)
    entries = logged(log, began)
    away = [
        e["at"] - stopped
        for e in entries
        if e.get("tenant") in on_dc1
        and e["at"] > stopped
        and e.get("dc") == names[1]
        and e["at"] < started
    ]
    home = [
        e["at"] - started
        for e in entries
        if e.get("tenant") in on_dc1 and e["at"] > started and e.get("dc") == names[0]
    ]
    others = [e for e in entries if e.get("tenant") not in on_dc1 and stopped < e["at"] < started]
    gaps = [b - a for a, b in itertools.pairwise(answered_at)]
    lines = [
        (
            f"- {count} users over {len(tenants)} tenants ({len(on_dc1)} preferring DC1), 4 "
            f"processes, {ended - began:.1f} s in all; DC1 stopped once {count // 4} were "
            "answered, for 20 s."
        )
    ]
    if away:
        lines.append(
            f"- a DC1 tenant's first success on DC2 after the stop: {min(away):.1f} s "
            f"({len(away)} successes of DC1 tenants on DC2 while DC1 was down)"
        )
    else:
        lines.append("- no DC1 tenant succeeded on DC2 while DC1 was down")
    if home:
        lines.append(f"- a DC1 tenant's first success on DC1 after the start: {min(home):.1f} s")
    after = [e for e in entries if e.get("tenant") in on_dc1 and e["at"] > started]
    on = {dc: sum(1 for e in after if e.get("dc") == dc) for dc in names}
    lines.append(
        f"- DC1 tenants' users answered after the start: {on[names[0]]} on DC1, "
        f"{on[names[1]]} on DC2"
    )
    lines.append(
        f"- meanwhile the DC2 tenants went on: {len(others)} users answered while DC1 was "
        f"down ({len(others) / max(started - stopped, 1e-9):.1f}/s)"
    )
    lines.append(f"- the longest gap between two answers: {max(gaps):.1f} s")
    return lines


def idle_failover(bench: Bench, names: list[str], settings: dict[str, str], count: int) -> str:
    """Tenants whose changes are all on DC2 already (replication forced, then quiet): DC1
    stops, then ``count`` users of DC1 tenants are published; how long until they are
    answered, all on DC2."""
    tenants = [t for t in pinned_tenants(bench, names) if tenant_order(t, names)[0] == names[0]]
    envelopes = users(bench, tenants, count, "i")
    connection, channel = results_channel(common_broker("results"))
    log = REPO / ".state" / "bench" / "two-dcs-idle.log"
    log.unlink(missing_ok=True)
    try:
        with fleet(2, log, settings={**settings, "PROVISIONER_LOG_LEVEL": "info"}):
            platform("dc1", "stop")
            try:
                began = time.time()
                publish_all(common_broker("portal"), ((e.id, e) for e in envelopes))
                first = None
                while channel.queue_declare(RESULTS, passive=True).method.message_count < count:
                    if (
                        first is None
                        and channel.queue_declare(RESULTS, passive=True).method.message_count
                    ):
                        first = time.time() - began
                    time.sleep(0.01)
                took = time.time() - began
            finally:
                platform("dc1", "start")
    finally:
        connection.close()
        remove(bench, tenants)
    on_dc2 = sum(1 for e in logged(log, began) if e.get("dc") == names[1])
    return (
        f"- idle tenants (their changes replicated), DC1 stopped first: {count} users of "
        f"{len(tenants)} DC1 tenants answered in {took:.1f} s, the first after "
        f"{first if first is not None else took:.2f} s; {on_dc2} of them applied on DC2"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    platform("dc2", "up")
    one = load_settings()
    two = two_dc_settings()
    names = [dc.name for dc in Settings.from_env({**dict(os.environ), **two}).domain_controllers]
    bench = Bench(one)
    runs: dict[str, list[float]] = {
        "one DC, its replica stopped, 2 processes": [],
        "one DC, 2 processes": [],
        "two DCs, 2 processes": [],
        "two DCs, 4 processes": [],
    }
    for _ in range(args.rounds):
        platform("dc2", "stop")
        try:
            runs["one DC, its replica stopped, 2 processes"].append(
                rate(bench, names, {}, 2, args.users, replica=False)
            )
        finally:
            platform("dc2", "start")
        runs["one DC, 2 processes"].append(rate(bench, names, {}, 2, args.users))
        runs["two DCs, 2 processes"].append(rate(bench, names, two, 2, args.users))
        runs["two DCs, 4 processes"].append(rate(bench, names, two, 4, args.users))
    base = statistics.median(runs["one DC, 2 processes"])
    print(
        f"## user.created end to end on one DC and on two, {args.users} users over "
        f"{2 * PER_DC} tenants per run, {args.rounds} interleaved rounds\n"
    )
    print("| fleet | users/s (median) | runs | ratio to one DC, 2 processes |")
    print("|---|---:|---|---:|")
    for label, values in runs.items():
        print(
            f"| {label} | {statistics.median(values):.1f} | "
            f"{', '.join(f'{v:.1f}' for v in values)} | {statistics.median(values) / base:.2f} |"
        )
    print("\nFailover:\n")
    print("\n".join(failover(bench, names, two, 2 * args.users)))
    print(idle_failover(bench, names, two, 50))
    bench.directory.close()


if __name__ == "__main__":
    main()
