"""LDAP writes and round trips per event type, and user.created throughput into Samba.

1. Every event type runs once through the engine against the local platform's DC, with
   a counting wrapper around the directory: writes and round trips (reads + writes) per
   event, beside the fewest writes the event can take.
2. user.created per second: the engine (plan, checks, quota, add, membership) against a
   raw ldap3 loop doing the same three writes (quota swap, one add carrying the password
   and the enabled flag, membership) over the same kind of connection (one LDAPS bind,
   CA checked), in the same run, alternating rounds.

Run after ``deploy/local/platform up``:
``.venv/bin/python -m bench.writes [--users N] [--rounds R]``.  It creates and deletes
tenants of its own (``bench-*``).
"""

from __future__ import annotations

import argparse
import secrets
import ssl
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

import ldap3

from bench.common import PASSWORD, load_settings, raw_user_writes
from messages.envelope import Envelope
from messages.json_input import envelope_from_json
from messages.sealing import load_public_key
from workers.directory.ldap_directory import LdapDirectory
from workers.directory.metered import READS, WRITES, MeteredDirectory
from workers.directory.port import Directory
from workers.provisioning import engine, tenant_state
from workers.provisioning.keys import KeyRing
from workers.provisioning.realm import read_realm
from workers.runtime.metrics import Metrics
from workers.runtime.settings import Settings

# The fewest writes each event can take, and why.
MINIMUM = {
    "tenant.created": (7, "OU, 2 groups, the DACL (needs the groups' SIDs), admin, 2 memberships"),
    "user.created": (2, "one add with password and flags, one membership"),
    "user.updated": (1, "one modify"),
    "user.disabled": (1, "one modify"),
    "user.enabled": (1, "one modify"),
    "user.password_reset": (1, "one modify"),
    "user.deleted": (1, "one delete"),
    "tenant.updated": (1, "per object changed"),
    "tenant.suspended": (1, "per enabled user"),
    "tenant.resumed": (1, "per suspended user"),
    "tenant.deleted": (1, "per object, then the OU"),
}


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.directory = LdapDirectory.connect(settings)
        self.realm = read_realm(self.directory, settings.ldap_bind_dn)
        self.keys = KeyRing.from_settings(settings)
        self.public = load_public_key(settings.fleet_public_key_file)

    def reconnect(self) -> None:
        """A new connection, after one may have idled past the DC's idle limit (Samba
        closed the growth bench's, idle while the fleet filled 15k users for 15 minutes)."""
        self.directory.close()
        self.directory = LdapDirectory.connect(self.settings)

    def tenant_state(self, tenant: str) -> tenant_state.TenantState:
        """The tenant's state as the engine reads it before planning."""
        found = tenant_state.read(self.directory, tenant, self.settings.ldap_base_dn)
        assert found is not None, f"{tenant} has no settings"
        return found

    def event(self, kind: str, data: dict[str, Any]) -> Envelope:
        return envelope_from_json(
            {"type": kind, "data": data, "idempotency_key": secrets.token_hex(8)},
            public_key=self.public,
        )

    def run(self, envelope: Envelope, directory: Directory | None = None) -> None:
        ctx = self.keys.context(self.realm, envelope.idempotency_key, self.settings.sam_digits)
        engine.handle(envelope, directory or self.directory, ctx)

    def counted(self, kind: str, data: dict[str, Any]) -> tuple[int, int]:
        """(writes, round trips) of one event, counted by the fleet's own metered directory."""
        metered = MeteredDirectory(self.directory, Metrics())
        self.run(self.event(kind, data), metered)
        writes = metered.operations(WRITES)
        return writes, writes + metered.operations(READS)

    def new_tenant(self, max_users: int | None = None) -> str:
        tenant = f"bench-{secrets.token_hex(3)}"
        data: dict[str, Any] = {
            "tenant": tenant,
            "name": tenant,
            "domains": [f"{tenant}.example"],
            "admin": {"username": "admin", "given_name": "B", "surname": "M", "password": PASSWORD},
        }
        if max_users:
            data["plan"] = {"max_users": max_users}
        self.run(self.event("tenant.created", data))
        return tenant

    def delete_tenant(self, tenant: str) -> None:
        self.run(self.event("tenant.deleted", {"tenant": tenant}))


def per_event_type(bench: Bench) -> list[tuple[str, int, int]]:
    tenant = f"bench-{secrets.token_hex(3)}"
    user = {"tenant": tenant, "username": "someone"}
    rows = [
        (
            "tenant.created",
            *bench.counted(
                "tenant.created",
                {
                    "tenant": tenant,
                    "name": tenant,
                    "domains": [f"{tenant}.example", f"{tenant}.test"],
                    "admin": {
                        "username": "admin",
                        "given_name": "B",
                        "surname": "M",
                        "password": PASSWORD,
                    },
                },
            ),
        )
    ]
    steps: list[tuple[str, dict[str, Any]]] = [
        ("user.created", {**user, "given_name": "S", "surname": "O", "password": PASSWORD}),
        ("user.updated", {**user, "surname": "Else"}),
        ("user.disabled", user),
        ("user.enabled", user),
        ("user.password_reset", {**user, "password": PASSWORD + "2"}),
        ("tenant.updated", {"tenant": tenant, "name": "Renamed"}),
        ("tenant.suspended", {"tenant": tenant}),
        ("tenant.resumed", {"tenant": tenant}),
        ("user.deleted", user),
        ("tenant.deleted", {"tenant": tenant}),
    ]
    rows += [(kind, *bench.counted(kind, data)) for kind, data in steps]
    return rows


def raw_connection(settings: Settings) -> ldap3.Connection:
    url = urlsplit(settings.ldap_url)
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=settings.ldap_ca_file,
        valid_names=[settings.ldap_tls_name],
        version=ssl.PROTOCOL_TLS_CLIENT,
    )
    server = ldap3.Server(url.hostname, port=url.port or 636, use_ssl=True, tls=tls)
    return ldap3.Connection(
        server,
        settings.ldap_bind_dn,
        settings.ldap_bind_password,
        auto_bind=ldap3.AUTO_BIND_NO_TLS,
        raise_exceptions=True,
    )


def raw_users(conn: ldap3.Connection, base: str, tenant: str, count: int) -> float:
    """The same three writes per user as the engine makes, nothing else; users/s."""
    started = time.perf_counter()
    for i in range(count):
        raw_user_writes(conn, base, tenant, f"raw{i:05d}", i + 1, record=False)
    return count / (time.perf_counter() - started)


def engine_users(bench: Bench, tenant: str, count: int) -> float:
    envelopes = [
        bench.event(
            "user.created",
            {
                "tenant": tenant,
                "username": f"eng{i:05d}",
                "given_name": "Eng",
                "surname": str(i),
                "password": PASSWORD,
            },
        )
        for i in range(count)
    ]
    started = time.perf_counter()
    for envelope in envelopes:
        bench.run(envelope)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    bench = Bench(settings)

    print("## LDAP operations per event type (through the engine)\n")
    print("| event | writes | round trips | fewest writes possible |")
    print("|---|---:|---:|---|")
    for kind, writes, trips in per_event_type(bench):
        minimum, why = MINIMUM[kind]
        print(f"| {kind} | {writes} | {trips} | {minimum}: {why} |")

    raw = raw_connection(settings)
    engine_rates: list[float] = []
    raw_rates: list[float] = []
    for _ in range(args.rounds):
        for rates, measure in ((engine_rates, "engine"), (raw_rates, "raw")):
            tenant = bench.new_tenant()
            try:
                if measure == "engine":
                    rates.append(engine_users(bench, tenant, args.users))
                else:
                    rates.append(raw_users(raw, settings.ldap_base_dn, tenant, args.users))
            finally:
                bench.delete_tenant(tenant)
    raw.unbind()
    eng, base = statistics.median(engine_rates), statistics.median(raw_rates)
    print(
        f"\n## user.created into Samba, one connection, {args.users} users, "
        f"median of {args.rounds} rounds\n"
    )
    print("| path | users/s | ratio to raw |")
    print("|---|---:|---:|")
    print(f"| engine (plan, checks, quota swap, add, membership) | {eng:.1f} | {eng / base:.2f} |")
    print(f"| raw ldap3 loop, the same 3 writes | {base:.1f} | 1.00 |")
    bench.directory.close()


if __name__ == "__main__":
    main()
