"""The fleet's delivery layer and engine over an in-memory domain, for unit tests that need
no root and no Samba: events are sealed to a key ring of the test's own, as a producer
seals them, and the sessions are the worker's own (:class:`Sessions`), handed a factory
of the in-memory directory as the worker is handed the ldap3 edge's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from messages.envelope import Envelope, encode
from messages.json_input import envelope_from_json
from messages.sealing import load_public_key
from tests.support import engine
from workers.delivery.decisions import Decision, Delivery, decide
from workers.delivery.failures import attempt_of
from workers.delivery.session import Sessions
from workers.directory.memory import MemoryDirectory
from workers.directory.port import Directory
from workers.ops.memory_domain import memory_domain
from workers.provisioning.keys import KeyRing
from workers.provisioning.realm import Realm
from workers.provisioning.steps import Context
from workers.runtime import key_ring
from workers.runtime.producers import ProducerPolicy
from workers.runtime.retry import RetryPolicy

PRODUCER = "suite"
POLICY = ProducerPolicy.parse(
    f"{PRODUCER}=tenant.created,tenant.updated,tenant.deleted,tenant.suspended,"
    "tenant.resumed,user.created,user.updated,user.deleted,user.disabled,user.enabled,"
    "user.password_reset"
)
RETRIES = RetryPolicy((1.0, 5.0), max_attempts=3, jitter=0.0)
PASSWORD = "Memory-Passw0rd!"


@dataclass
class MemoryFleet:
    directory: MemoryDirectory
    realm: Realm
    keys: KeyRing
    ring: Path

    @classmethod
    def make(cls, tmp_path: Path) -> MemoryFleet:
        ring = tmp_path / "ring"
        key_ring.init(ring)
        domain = memory_domain()
        keys = KeyRing(fleet=key_ring.KeyRing.load(ring), results_public=None)
        return cls(domain.directory, domain.realm, keys, ring)

    def sessions(self, directory: Directory | None = None) -> Sessions:
        """The worker's sessions over this domain (or a wrapper of it)."""
        target = directory or self.directory
        return Sessions(lambda: target, self.realm.provisioner_dn, self.keys, sam_digits=10)

    def event(self, kind: str, data: dict[str, Any], key: str | None = None) -> Envelope:
        """An envelope as a producer makes it: plaintext passwords sealed to the ring."""
        public = load_public_key(self.ring / key_ring.CURRENT)
        line = {"type": kind, "data": data, "idempotency_key": key or str(uuid.uuid4())}
        return envelope_from_json(line, public_key=public)

    def context(self, envelope: Envelope) -> Context:
        return self.keys.context(self.realm, envelope.idempotency_key, 10)

    def decide(
        self,
        envelope: Envelope | bytes,
        *,
        directory: Directory | None = None,
        headers: dict[str, Any] | None = None,
        producer: str | None = PRODUCER,
        routing_key: str | None = None,
        policy: RetryPolicy = RETRIES,
    ) -> Decision:
        """What the worker decides for ``envelope`` delivered with ``headers``."""
        body = envelope if isinstance(envelope, bytes) else encode(envelope)
        key = routing_key or (envelope.type if isinstance(envelope, Envelope) else "unknown")
        message_id = envelope.id if isinstance(envelope, Envelope) else None
        delivery = Delivery(
            body, key, message_id, attempt_of(headers), producer, dict(headers or {})
        )
        return decide(delivery, self.sessions(directory), policy, POLICY, worker="test:1")


def tenant_data(
    tenant: str, *, max_users: int | None = None, policy: bool = False
) -> dict[str, Any]:
    """The suite's tenant (``tests/support/engine``), its admin's password given; with
    ``policy``, a plan with a password policy (the password policy object is a step)."""
    data = engine.tenant_data(
        tenant, admin_password=PASSWORD, max_users=max_users or (100 if policy else None)
    )
    if policy:
        data["plan"]["password_policy"] = {"min_length": 8, "complexity": True}
    return data


def user_data(tenant: str, username: str, **more: Any) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "username": username,
        "given_name": "Jo",
        "surname": "Doe",
        "password": PASSWORD,
        **more,
    }


def now() -> datetime:
    return datetime.now(UTC)
