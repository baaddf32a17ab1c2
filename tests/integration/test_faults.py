"""Fault drills in the suite: 500 user.created over 10 tenants on a fleet of two worker
processes, with a fault landing while the work is in flight.  After each, the directory
holds exactly the 500 users, none twice, and the dead-letter queue is empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path

import ldap3
import pika.exceptions
import pytest

from bench.common import restart_broker
from bench.fleet import Fleet
from messages.results import Outcome, decode_result
from tests.support import broker, engine, ldap_oracle
from tests.support.platform import SuitePlatform, fleet, wait_for

BASE = "DC=hosting,DC=test"
USERS = 500
TENANTS = 10
PASSWORD = "Drill-Passw0rd!"
# Short retries for the suite, but a budget (1+2+4*9 s) well past the outages injected.
RETRIES = {"PROVISIONER_RETRY_DELAYS": "1,2,4", "PROVISIONER_RETRY_ATTEMPTS": "12"}


class Drill:
    def __init__(self, platform: SuitePlatform, results: str, tmp_path: Path) -> None:
        self.platform = platform
        self.results = results
        self.tmp_path = tmp_path
        self.run = secrets.token_hex(2)
        self.tenants = [f"fd{i}-{self.run}" for i in range(TENANTS)]
        self.final: dict[str, Outcome] = {}
        self.retries = 0

    def prepare(self) -> None:
        for tenant in self.tenants:
            engine.run(
                self.platform,
                engine.event(
                    self.platform,
                    "tenant.created",
                    engine.tenant_data(tenant, admin_password=PASSWORD),
                    f"{tenant}-c",
                ),
            )
        lines = [
            json.dumps(
                {
                    "type": "user.created",
                    "idempotency_key": f"{t}-{n}",
                    "data": {
                        "tenant": t,
                        "username": f"d{n:03d}",
                        "given_name": "D",
                        "surname": str(n),
                        "password": PASSWORD,
                    },
                }
            )
            for n in range(USERS // TENANTS)
            for t in self.tenants
        ]
        path = self.tmp_path / "drill.jsonl"
        path.write_text("\n".join(lines) + "\n")
        published = self.platform.provisioner("publish", "--file", str(path))
        assert published.returncode == 0, published.stderr

    def progress(self) -> int:
        """Users answered for good so far, read off the results queue as it fills.

        Each result is acked only once tallied, so a broker restart loses none.
        """
        with contextlib.suppress(pika.exceptions.AMQPError, OSError), broker.channel() as ch:
            while True:
                method, _, body = ch.basic_get(self.results, auto_ack=False)
                if method is None:
                    break
                result = decode_result(body)
                if result.outcome is Outcome.RETRY_SCHEDULED:
                    self.retries += 1
                elif result.event_type == "user.created" and result.in_reply_to:
                    self.final[result.in_reply_to] = result.outcome
                ch.basic_ack(method.delivery_tag)
        return len(self.final)

    def run_with(self, fault: Callable[[Fleet], None], overrides: dict[str, str]) -> int:
        """Run the drill, inject ``fault`` between 10 % and 90 %; return the progress then."""
        self.prepare()
        with fleet(self.platform, self.tmp_path / "fleet.log", 2, overrides) as running:
            wait_for(lambda: self.progress() >= USERS // 10, 120, interval=0.1)
            at = self.progress()
            fault(running)
            wait_for(lambda: self.progress() >= USERS, 240, interval=0.5)
            self.fleet = running
        return at

    def assert_exact(self) -> None:
        # A connection of its own: one opened before a DC restart is gone.
        admin = ldap_oracle.administrator(self.platform)
        names: list[str] = []
        for tenant in self.tenants:
            admin.search(
                f"OU={tenant},OU=Tenants,{BASE}",
                "(&(objectClass=user)(!(cn=admin)))",
                ldap3.LEVEL,
                attributes=["cn", "sAMAccountName"],
            )
            names += [
                f"{tenant}/{r['raw_attributes']['cn'][0].decode()}"
                for r in admin.response
                if r.get("type") == "searchResEntry"
            ]
        admin.unbind()
        assert len(names) == USERS  # none lost
        assert len(set(names)) == USERS  # none twice
        assert set(self.final.values()) <= {Outcome.SUCCEEDED, Outcome.DUPLICATE}
        assert broker.depth(broker.DLQ) == 0


@pytest.fixture
def drill(platform: SuitePlatform, results: str, tmp_path: Path) -> Drill:
    return Drill(platform, results, tmp_path)


def test_a_worker_killed_mid_run(drill: Drill) -> None:
    killed: dict[str, int] = {}

    def kill(running: Fleet) -> None:
        victim = running.children()[0]
        os.kill(victim, signal.SIGKILL)
        killed["pid"] = victim
        wait_for(lambda: len(running.children()) == 2 and victim not in running.children(), 30)

    at = drill.run_with(kill, RETRIES)
    assert USERS // 10 <= at <= USERS * 9 // 10, f"the kill landed at {at}/{USERS}"
    died = drill.fleet.events("supervisor.child_died")
    assert [e["pid"] for e in died] == [killed["pid"]]
    new_pids = set(drill.fleet.children()) | {
        int(str(e["pid"])) for e in drill.fleet.events("supervisor.child_started")
    }
    assert len(new_pids) == 3  # two at the start, and the one that replaced the victim
    drill.assert_exact()


def test_a_broker_restart_mid_run(drill: Drill) -> None:
    at = drill.run_with(lambda _: restart_broker(), RETRIES)
    assert USERS // 10 <= at <= USERS * 9 // 10, f"the restart landed at {at}/{USERS}"
    assert drill.fleet.events("broker.lost")  # the workers saw it, and came back
    drill.assert_exact()


def test_a_directory_outage_mid_run(drill: Drill) -> None:
    def outage(_: Fleet) -> None:
        stopped = drill.platform.script("samba-stop")
        assert stopped.returncode == 0, stopped.stderr
        try:
            time.sleep(10)
        finally:
            started = drill.platform.script("samba-start")
            assert started.returncode == 0, started.stderr

    at = drill.run_with(outage, RETRIES)
    assert USERS // 10 <= at <= USERS * 9 // 10, f"the outage began at {at}/{USERS}"
    assert drill.retries > 0  # the retries show in the result events...
    assert drill.fleet.events("message.retry_scheduled")  # ...and in the logs
    drill.assert_exact()
