"""The broker's accounts, one per role, against a real RabbitMQ: the matrix of roles and
actions of docs/events.md, cell by cell, and the worker's own check of the producer.

The oracle is the documented table, parsed from the doc: not the platform script that
set the permissions, nor the policy the fleet was given.  Every action of a role runs on
that role's one connection, each on a channel of its own (a refusal closes the channel),
so each refusal sits beside the actions the same connection is allowed.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ldap3
import pika
import pika.exceptions
import pytest

from messages.envelope import Envelope, encode
from messages.events import CATALOGUE, TenantDeleted
from messages.results import decode_result
from tests.support import broker, engine, ldap_oracle
from tests.support.platform import SuitePlatform, wait_for
from workers.runtime.producers import ProducerPolicy

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
ROLES = ("order", "billing", "portal", "results", "worker", "operator")
EVENTS = "provisioning.events"
BASE = "DC=hosting,DC=test"


def documented() -> dict[str, dict[str, bool]]:
    """action -> role -> allowed, from the table between the broker-roles markers."""
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- broker-roles -->")[1].split("<!-- /broker-roles -->")[0]
    rows = [line for line in table.strip().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert header == ["action", *ROLES]
    out: dict[str, dict[str, bool]] = {}
    for line in rows[2:]:
        action, *cells = (cell.strip() for cell in line.strip("|").split("|"))
        assert all(c in {"yes", "no"} for c in cells), line
        out[action] = {role: cell == "yes" for role, cell in zip(ROLES, cells, strict=True)}
    return out


def user_of(platform: SuitePlatform, role: str) -> str:
    return str(pika.URLParameters(platform.amqp_url(role)).credentials.username)


class Account:
    """One role's connection; ``can`` runs an action on a fresh channel of it."""

    def __init__(self, platform: SuitePlatform, role: str) -> None:
        self.role = role
        self.user = user_of(platform, role)
        self.connection = pika.BlockingConnection(platform.amqp_parameters(role))

    def can(self, action: Callable[[Any], None]) -> bool:
        assert self.connection.is_open, "a refusal must close the channel, not the connection"
        channel = self.connection.channel()
        channel.confirm_delivery()
        try:
            action(channel)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code not in (403, 406):  # ACCESS_REFUSED, PRECONDITION_FAILED
                raise
            return False
        if channel.is_open:
            channel.close()
        return True


def publish(exchange: str, key: str, user_id: str) -> Callable[[Any], None]:
    def act(channel: Any) -> None:
        channel.basic_publish(
            exchange, key, b"probe", pika.BasicProperties(user_id=user_id), mandatory=True
        )

    return act


def consume(queue: str) -> Callable[[Any], None]:
    return lambda channel: channel.basic_get(queue, auto_ack=False)  # closed: it goes back


def declare(name: str) -> Callable[[Any], None]:
    def act(channel: Any) -> None:
        channel.queue_declare(name, durable=False, exclusive=True)  # gone with the connection

    return act


def tap(name: str, exchange: str = EVENTS) -> Callable[[Any], None]:
    """A queue of its own, bound to everything ``exchange`` routes, and read."""

    def act(channel: Any) -> None:
        channel.queue_declare(name, durable=False, exclusive=True)  # gone with the connection
        channel.queue_bind(name, exchange, routing_key="#")
        channel.basic_get(name, auto_ack=True)

    return act


@pytest.fixture
def no_probes(platform: SuitePlatform) -> Iterator[None]:
    """The probes that got through are taken out of the work queue again."""
    del platform
    broker.purge(broker.WORK)
    yield
    broker.purge(broker.WORK)


def test_each_role_can_do_what_the_table_says_and_nothing_else(
    platform: SuitePlatform, no_probes: None
) -> None:
    del no_probes
    table = documented()
    other = user_of(platform, "order")
    observed: dict[str, dict[str, bool]] = {action: {} for action in table}
    for role in ROLES:
        account = Account(platform, role)
        own_first = next(
            (t for t in sorted(CATALOGUE) if table[f"publish `{t}`"][role]), "user.created"
        )
        impostor = user_of(platform, "billing") if role == "order" else other
        actions: dict[str, Callable[[Any], None]] = {
            **{f"publish `{t}`": publish(EVENTS, t, account.user) for t in CATALOGUE},
            # A producer claims to be another one on its own routing key; the fleet's
            # accounts put a copy with the order system's user_id into the work queue.
            "publish with another user's `user_id`": (
                publish(EVENTS, own_first, impostor)
                if role not in ("worker", "operator")
                else publish("", broker.WORK, impostor)
            ),
            "consume `provisioning.work`": consume(broker.WORK),
            "read the dead letters (`provisioning.dead-letter`)": consume(broker.DLQ),
            "put a message into `provisioning.work` (a replay)": publish(
                "", broker.WORK, account.user
            ),
            "consume the results (bind a queue of its own to `provisioning.results`)": tap(
                f"provisioning.results.probe-{role}", "provisioning.results"
            ),
            "configure (declare a queue `provisioning.probe-<role>`)": declare(
                f"provisioning.probe-{role}"
            ),
            "tap the events (bind a queue of its own to `provisioning.events`)": tap(
                f"provisioning.tap-{role}"
            ),
        }
        assert set(actions) == set(table), "the table and the test name the same actions"
        try:
            for action, act in actions.items():
                observed[action][role] = account.can(act)
        finally:
            account.connection.close()
    assert observed == table
    # Each role could do something on its connection: every refusal has its control.
    assert all(any(observed[a][role] for a in table) for role in ROLES)


def test_the_fleets_policy_is_the_documented_publish_rows(platform: SuitePlatform) -> None:
    """The worker's check and the broker's are the same table."""
    table = documented()
    expected = {
        user_of(platform, role): frozenset(t for t in CATALOGUE if table[f"publish `{t}`"][role])
        for role in ("order", "billing", "portal")
    }
    policy = ProducerPolicy.parse(platform.settings_env["PROVISIONER_PRODUCER_POLICY"])
    assert dict(policy.allowed) == expected


def test_guest_has_no_permission_on_a_platform_vhost(platform: SuitePlatform) -> None:
    """The platform's `up` took guest's rights away; the suite granted them back on its own
    vhost afterwards, so the check is of the broker's list, vhost by vhost."""
    listed = platform.script("rabbitmqctl", "-q", "list_user_permissions", "guest")
    assert listed.returncode == 0, listed.stderr
    vhosts = {line.split("\t")[0] for line in listed.stdout.splitlines()[1:]}
    assert platform.vhost in vhosts  # the suite's own grant: the check can see one
    assert not vhosts & {"/provisioning", "/provisioning-bench-dc"}


def tenant_deleted_body(tenant: str) -> bytes:
    return encode(
        Envelope(
            id=str(uuid.uuid4()),
            idempotency_key=f"{tenant}-deleted-{secrets.token_hex(2)}",
            occurred_at=datetime.now(UTC),
            data=TenantDeleted(tenant=tenant),
        )
    )


def test_a_producer_cannot_ask_for_what_its_policy_does_not_allow(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    """The portal may create users.  Its user.created reaches the directory (the positive
    control), while a tenant.deleted it slips in under the routing key user.created, and a
    message without user_id, are dead-lettered as unauthorized_producer, and the
    tenant is left exactly as it was."""
    tenant = engine.create_tenant(platform, "roles", "Roles-Admin-Passw0rd-1")
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    watched = [ou]
    created = {
        "type": "user.created",
        "idempotency_key": f"{tenant}-alice",
        "data": {
            "tenant": tenant,
            "username": "alice",
            "given_name": "Alice",
            "surname": "Portal",
            "role": "user",
        },
    }
    path = tmp_path / "portal.jsonl"
    path.write_text(json.dumps(created) + "\n", encoding="utf-8")
    with platform.worker(tmp_path / "worker.log"):
        published = platform.provisioner("publish", "--file", str(path), role="portal")
        assert published.returncode == 0, published.stderr
        wait_for(lambda: broker.depth(results) >= 1, timeout=60)
        before = ldap_oracle.snapshot(admin, watched)
        broker.publish_raw(
            EVENTS, "user.created", tenant_deleted_body(tenant), "slipped", role="portal"
        )
        broker.publish_raw(
            EVENTS, "tenant.deleted", tenant_deleted_body(tenant), "anonymous", user_id=None
        )
        wait_for(lambda: broker.depth(broker.DLQ) >= 2, timeout=60)
    answers = [decode_result(m.body) for m in broker.drain(results)]
    portal = user_of(platform, "portal")
    succeeded = [a for a in answers if a.event_type == "user.created"]
    assert [(a.outcome.value, a.producer) for a in succeeded] == [("succeeded", portal)]
    alice = f"CN=alice,{ou}"
    assert ldap_oracle.read(admin, alice, ["cn"]) is not None
    letters = {m.properties.message_id: m for m in broker.drain(broker.DLQ)}
    assert set(letters) == {"slipped", "anonymous"}
    for message_id, letter in letters.items():
        assert letter.headers["x-error-code"] == "unauthorized_producer", message_id
    slipped = letters["slipped"]
    assert slipped.properties.user_id == portal  # the dead letter still says who sent it
    assert "may not publish tenant.deleted" in str(slipped.headers["x-error-message"])
    assert "no user_id" in str(letters["anonymous"].headers["x-error-message"])
    refused = [a for a in answers if a.error and a.error.code == "unauthorized_producer"]
    assert sorted(str(a.producer) for a in refused) == sorted([portal, "None"])
    assert ldap_oracle.snapshot(admin, watched) == before  # the tenant, untouched


def test_records_say_which_producer_and_which_message_made_a_user(
    platform: SuitePlatform, results: str, tmp_path: Path
) -> None:
    """`provisioner records list` answers "which order created this user?"."""
    tenant = f"asked-{secrets.token_hex(3)}"
    lines = [
        {
            "type": "tenant.created",
            "idempotency_key": f"order-4711-{tenant}",
            "data": engine.tenant_data(tenant),
        },
        {
            "type": "user.created",
            "idempotency_key": f"order-4712-{tenant}-bob",
            "data": {
                "tenant": tenant,
                "username": "bob",
                "given_name": "Bob",
                "surname": "Asked",
                "role": "user",
            },
        },
    ]
    with platform.worker(tmp_path / "worker.log"):
        for role, line in zip(("order", "portal"), lines, strict=True):
            path = tmp_path / f"{role}.jsonl"
            path.write_text(json.dumps(line) + "\n", encoding="utf-8")
            done = platform.provisioner("publish", "--file", str(path), role=role)
            assert done.returncode == 0, done.stderr
            wait_for(
                lambda t=line["type"]: any(
                    decode_result(m.body).event_type == t
                    and decode_result(m.body).outcome.value == "succeeded"
                    for m in broker.drain(results)
                ),
                timeout=90,
            )
    listed = platform.provisioner("records", "list", "--tenant", tenant, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["type"], r["producer"], r["idempotency_key"]) for r in rows] == [
        ("tenant.created", user_of(platform, "order"), f"order-4711-{tenant}"),
        ("user.created", user_of(platform, "portal"), f"order-4712-{tenant}-bob"),
    ]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", r["message_id"]) for r in rows)
    one = platform.provisioner("records", "list", "--tenant", tenant, "--user", "bob")
    assert one.returncode == 0, one.stderr
    table = one.stdout.splitlines()
    assert table[0].split("\t") == [
        "OCCURRED AT",
        "TYPE",
        "PRODUCER",
        "IDEMPOTENCY KEY",
        "MESSAGE ID",
        "OUTCOME",
    ]
    assert [row.split("\t")[1:4] for row in table[1:]] == [
        ["user.created", user_of(platform, "portal"), f"order-4712-{tenant}-bob"]
    ]
    assert table[1].split("\t")[4] == rows[1]["message_id"]
