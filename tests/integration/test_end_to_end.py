"""Events published over RabbitMQ become objects in Samba, read back over LDAPS."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import ldap3
import msgpack
import pytest

from messages.results import Outcome, Result, decode_result
from tests.support import broker, ldap_oracle
from tests.support.platform import SuitePlatform, wait_for

WORK = "provisioning.work"
DLQ = "provisioning.dead-letter"
EVENTS = "provisioning.events"


RESULTS = "test.results"


@pytest.fixture
def queues(platform: SuitePlatform) -> Iterator[None]:
    del platform  # the topology exists once the platform is up
    with broker.channel() as ch:
        ch.queue_declare(RESULTS, durable=True)
        ch.queue_bind(RESULTS, "provisioning.results", routing_key="#")
    broker.purge(WORK, DLQ, RESULTS)
    yield
    broker.purge(WORK, DLQ, RESULTS)


def results() -> list[tuple[str, Result]]:
    return [(m.routing_key, decode_result(m.body)) for m in broker.drain(RESULTS)]


def tenant_data(tenant: str, name: str = "Tenant") -> dict[str, object]:
    return {
        "tenant": tenant,
        "name": name,
        "domains": [f"{tenant}.example"],
        "admin": {"username": "admin", "given_name": "Ada", "surname": "Admin"},
    }


def new_tenant() -> str:
    return f"e2e-{secrets.token_hex(4)}"


def tenant_dn(tenant: str) -> str:
    return f"OU={tenant},OU=Tenants,DC=hosting,DC=test"


@pytest.mark.usefixtures("queues")
def test_a_published_tenant_becomes_its_ou(
    platform: SuitePlatform, admin: ldap3.Connection, tmp_path: Path
) -> None:
    tenant = new_tenant()
    name = ' Fabrikam, Inc. = "Fab" #1 '
    with platform.worker(tmp_path / "worker.log"):
        published = platform.provisioner(
            "publish",
            "tenant.created",
            "--data",
            json.dumps(tenant_data(tenant, name)),
            "--idempotency-key",
            f"{tenant}-created",
        )
        assert published.returncode == 0, published.stderr
        assert "confirmed tenant.created id=" in published.stdout
        message_id = published.stdout.split("id=")[1].strip()
        wait_for(lambda: broker.depth(RESULTS) == 1, 30)
    entry = ldap_oracle.read(admin, tenant_dn(tenant), ["ou", "description", "objectClass"])
    assert entry is not None
    assert entry["ou"] == [tenant]
    assert entry["description"] == [name]
    assert "organizationalUnit" in entry["objectClass"]
    log = (tmp_path / "worker.log").read_text(encoding="utf-8")
    succeeded = [json.loads(x) for x in log.splitlines() if '"message.succeeded"' in x]
    assert [(s["tenant"], s["idempotency_key"]) for s in succeeded] == [
        (tenant, f"{tenant}-created")
    ]
    assert broker.depth(DLQ) == 0
    ((key, result),) = results()
    assert key == "tenant.created.succeeded"
    assert (result.outcome, result.in_reply_to, result.idempotency_key, result.attempt) == (
        Outcome.SUCCEEDED,
        message_id,
        f"{tenant}-created",
        1,
    )
    assert result.details["dn"] == tenant_dn(tenant)
    assert result.details["admin"]["dn"] == f"CN=admin,{tenant_dn(tenant)}"
    assert result.error is None


def envelope_bytes(**changes: object) -> bytes:
    wire: dict[str, object] = {
        "v": 1,
        "id": "p-1",
        "type": "tenant.created",
        "idempotency_key": "p-1",
        "occurred_at": "2026-11-25T08:00:00Z",
        "data": tenant_data("poisoned"),
    }
    wire.update(changes)
    body: bytes = msgpack.packb(wire)
    return body


POISON = [
    (b"\xc1\x00not msgpack", "malformed_msgpack"),
    (msgpack.packb([1, 2, 3]), "not_a_map"),
    (envelope_bytes(idempotency_key=42), "wrong_type"),
    (envelope_bytes(type="tenant.renamed"), "unknown_type"),
    (envelope_bytes(v=2), "unknown_version"),
    (envelope_bytes(source="x" * 70_000), "body_too_large"),
    (envelope_bytes(data=tenant_data("Evil,OU=Tenants")), "unsafe_identifier"),
]


@pytest.mark.usefixtures("queues")
def test_poison_goes_to_the_dead_letter_queue_and_the_worker_keeps_consuming(
    platform: SuitePlatform, admin: ldap3.Connection, tmp_path: Path
) -> None:
    after = new_tenant()
    with platform.worker(tmp_path / "worker.log") as worker:
        for index, (body, _) in enumerate(POISON):
            broker.publish_raw(EVENTS, "tenant.created", body, message_id=f"poison-{index}")
        published = platform.provisioner(
            "publish", "tenant.created", "--data", json.dumps(tenant_data(after))
        )
        assert published.returncode == 0, published.stderr
        wait_for(lambda: ldap_oracle.read(admin, tenant_dn(after), ["ou"]) is not None, 30)
        assert worker.poll() is None  # the same process, still consuming
    dead = broker.drain(DLQ)
    assert [d.headers["x-error-code"] for d in dead] == [code for _, code in POISON]
    assert [d.body for d in dead] == [body for body, _ in POISON]  # byte for byte
    assert [d.properties.message_id for d in dead] == [f"poison-{i}" for i in range(len(POISON))]
    assert all(d.headers["x-original-routing-key"] == "tenant.created" for d in dead)
    assert "data.tenant" in dead[-1].headers["x-error-message"]
    assert dead[-1].headers.get("x-tenant") is None
    assert len({d.headers["x-dead-letter-id"] for d in dead}) == len(POISON)
    assert broker.depth(WORK) == 0
    got = results()
    assert [(key, r.in_reply_to, r.error.code if r.error else None) for key, r in got[:-1]] == [
        ("unknown.dead_lettered", f"poison-{i}", code) for i, (_, code) in enumerate(POISON)
    ]
    assert got[-1][0] == "tenant.created.succeeded"


@pytest.mark.usefixtures("queues")
def test_jsonl_file_publish_and_a_republished_event_converge(
    platform: SuitePlatform, admin: ldap3.Connection, tmp_path: Path
) -> None:
    tenants = [new_tenant() for _ in range(3)]
    lines = [
        json.dumps(
            {"type": "tenant.created", "idempotency_key": f"{t}-created", "data": tenant_data(t)}
        )
        for t in tenants
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([*lines, lines[0], '{"type": "nope"}']) + "\n", encoding="utf-8")
    with platform.worker(tmp_path / "worker.log"):
        published = platform.provisioner("publish", "--file", str(events))
        assert published.returncode == 1  # one bad line
        assert "confirmed 4, failed 1" in published.stdout
        assert "line 5: invalid" in published.stderr
        wait_for(lambda: broker.depth(WORK) == 0, 30)
        found = platform.provisioner("directory", "tenants", "--timeout", "30", "--wait", *tenants)
        assert found.returncode == 0, found.stderr
    for tenant in tenants:
        assert tenant_dn(tenant) in found.stdout
        admin.search("OU=Tenants,DC=hosting,DC=test", f"(ou={tenant})", ldap3.SUBTREE)
        assert len(admin.response) == 1
    assert broker.depth(DLQ) == 0
