"""A worker killed while results it published are not confirmed yet loses nothing and
applies nothing twice.

The worker publishes a message's result (and acks it once confirmed) while the directory
thread already works on the next message, so at any moment up to two messages may be
applied in the directory and unanswered.  To hold the fault in that window, the broker
is made to stop reading from publishers (a memory alarm: RabbitMQ blocks every
publishing connection, consumers go on): the worker applies what it has in hand and
then waits for confirms that do not come.  One of a fleet of two is SIGKILLed there,
with users in the directory whose results never came; the supervisor starts a new
worker (a new PID); the alarm is lifted.  Every message is then answered, each user
exists once, nothing is dead-lettered.

The alarm holds the worker's acks back too (the broker reads nothing from it), so this
test shows what a kill in the window leaves, not the order of confirm and ack: that
order is tests/unit/test_worker_pipeline.py's, where acking before the confirms fails.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import ldap3

from messages.results import Outcome, decode_result
from tests.support import broker, engine, ldap_oracle
from tests.support.platform import SuitePlatform, fleet, rabbitmqctl, wait_for

BASE = "DC=hosting,DC=test"
USERS = 80
HIGH_WATERMARK = "0.4"  # RabbitMQ's default, which the platform keeps


def users(admin: ldap3.Connection, tenant: str) -> int:
    assert admin.search(
        f"OU={tenant},OU=Tenants,{BASE}", "(&(objectClass=user)(!(cn=admin)))", ldap3.LEVEL
    ), admin.result
    return sum(1 for r in admin.response if r["type"] == "searchResEntry")


def answers(results: str, seen: dict[str, list[Outcome]]) -> int:
    """The user.created messages answered so far (``seen``: every answer of each)."""
    for message in broker.drain(results):
        result = decode_result(message.body)
        if result.event_type == "user.created" and result.in_reply_to:
            seen.setdefault(result.in_reply_to, []).append(result.outcome)
    return len(seen)


def test_a_worker_killed_with_results_unconfirmed_loses_nothing_and_applies_nothing_twice(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = engine.create_tenant(platform, "cw", "Cw-Admin-Passw0rd!")
    lines = [
        json.dumps(
            {
                "type": "user.created",
                "id": f"{tenant}-m{n:02d}",
                "idempotency_key": f"{tenant}-k{n:02d}",
                "data": {
                    "tenant": tenant,
                    "username": f"w{n:02d}",
                    "given_name": "W",
                    "surname": "C",
                },
            }
        )
        for n in range(USERS)
    ]
    source = tmp_path / "users.jsonl"
    source.write_text("\n".join(lines) + "\n")
    seen: dict[str, list[Outcome]] = {}

    with fleet(platform, tmp_path / "fleet.log", 2) as running:
        victim, other = running.children()
        assert platform.provisioner("publish", "--file", str(source)).returncode == 0
        wait_for(lambda: answers(results, seen) >= 10, timeout=60)
        rabbitmqctl("set_vm_memory_high_watermark", "0.000001")
        try:
            # The worker goes on in the directory until it waits on a confirm; then the
            # count of users stops moving.
            counts = [users(admin, tenant)]
            while True:
                time.sleep(1.0)
                counts.append(users(admin, tenant))
                if counts[-1] == counts[-2]:
                    break
            applied, answered = counts[-1], answers(results, seen)
            assert applied > answered, (
                f"the kill lands in the window: {applied} users made, {answered} answered"
            )
            assert applied < USERS, "and mid-run"
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: victim not in running.children() and len(running.children()) == 2, 30)
            successor = next(pid for pid in running.children() if pid != other)
            assert successor != victim
        finally:
            rabbitmqctl("set_vm_memory_high_watermark", HIGH_WATERMARK)
        wait_for(lambda: answers(results, seen) >= USERS, timeout=120)
        time.sleep(1)  # nothing more comes: one answer each

    assert answers(results, seen) == USERS
    outcomes = {o for answered_as in seen.values() for o in answered_as}
    assert outcomes == {Outcome.SUCCEEDED}, seen  # a redelivery is "succeeded" again
    assert users(admin, tenant) == USERS, "each user once"
    counter = ldap_oracle.read(
        admin, f"CN=Tenant Settings,OU={tenant},OU=Tenants,{BASE}", ["msDS-Settings"]
    )
    assert counter is not None
    assert f"users={USERS + 1}" in counter["msDS-Settings"], counter
    assert broker.depth(broker.DLQ) == 0
    # What the victim had applied without answering came back to the others as
    # redeliveries, and was answered from its records.
    redelivered = [
        e
        for e in running.events("message.succeeded")
        if e.get("redelivered") and not str(e.get("worker", "")).endswith(f":{victim}")
    ]
    assert redelivered, "the victim held applied, unanswered messages"
