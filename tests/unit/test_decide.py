"""Every outcome of :func:`decide`, over an in-memory domain: what it returns, the headers
its copy carries, and what it left in the directory.  (The same decisions against Samba
are proven end to end in tests/integration.)"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgpack
import pytest

from messages.envelope import Envelope, encode
from messages.results import Outcome
from tests.support.faults import FaultyDirectory
from tests.support.memory import (
    PASSWORD,
    POLICY,
    RETRIES,
    MemoryFleet,
    tenant_data,
    user_data,
)
from workers.delivery.decisions import DeadLetter, Delivery, Done, Retry, decide
from workers.delivery.failures import PLAINTEXT_MARKER
from workers.delivery.idempotency import Ledger
from workers.directory.port import Entry, Scope
from workers.provisioning import names
from workers.runtime.retry import tier_queue

BASE = "DC=hosting,DC=test"


@pytest.fixture
def fleet(tmp_path: Path) -> MemoryFleet:
    return MemoryFleet.make(tmp_path)


def created(fleet: MemoryFleet, tenant: str = "contoso", **more: object) -> Envelope:
    return fleet.event("tenant.created", tenant_data(tenant, **more), f"{tenant}-created")  # type: ignore[arg-type]


def test_a_new_intent_is_done_applied_and_recorded(fleet: MemoryFleet) -> None:
    decision = fleet.decide(created(fleet))
    assert isinstance(decision, Done)
    assert decision.result.outcome is Outcome.SUCCEEDED
    assert decision.result.details["dn"] == names.tenant_dn("contoso", BASE)
    assert fleet.directory.read(names.tenant_dn("contoso", BASE), ["ou"]) is not None
    record = Ledger(fleet.directory, BASE).lookup(created(fleet)).record
    assert record is not None
    assert record.producer == "suite"


def test_the_same_intent_again_is_a_duplicate_and_changes_nothing(fleet: MemoryFleet) -> None:
    first = created(fleet)
    assert isinstance(fleet.decide(first), Done)
    before = fleet.directory.dump()
    again = fleet.event("tenant.created", tenant_data("contoso"), "contoso-created")
    assert again.id != first.id
    decision = fleet.decide(again)
    assert isinstance(decision, Done)
    assert decision.result.outcome is Outcome.DUPLICATE
    assert decision.result.details == fleet.decide(first).result.details  # the first's answer
    assert fleet.directory.dump() == before
    redelivered = fleet.decide(first)  # the very same message: succeeded again, no effect
    assert redelivered.result.outcome is Outcome.SUCCEEDED
    assert fleet.directory.dump() == before


def test_the_same_key_with_another_payload_is_dead_lettered(fleet: MemoryFleet) -> None:
    assert isinstance(fleet.decide(created(fleet)), Done)
    other = fleet.event(
        "tenant.created", tenant_data("contoso") | {"name": "Another"}, "contoso-created"
    )
    decision = fleet.decide(other)
    assert isinstance(decision, DeadLetter)
    assert decision.failure.code == "idempotency_conflict"


def test_an_event_older_than_one_applied_is_dead_lettered_as_stale(fleet: MemoryFleet) -> None:
    assert isinstance(fleet.decide(created(fleet)), Done)
    older = fleet.event("tenant.updated", {"tenant": "contoso", "name": "Old"}, "old")
    newer = fleet.event("tenant.updated", {"tenant": "contoso", "name": "New"}, "new")
    assert isinstance(fleet.decide(newer), Done)
    decision = fleet.decide(older)
    assert isinstance(decision, DeadLetter)
    assert decision.failure.code == "stale_event"
    entry = fleet.directory.read(names.tenant_dn("contoso", BASE), ["description"])
    assert entry is not None
    assert entry.values("description") == ["New"]


def test_a_user_before_its_tenant_is_retried_in_the_first_tier(fleet: MemoryFleet) -> None:
    user = fleet.event("user.created", user_data("contoso", "j.doe"))
    decision = fleet.decide(user, headers={"x-trace": "kept"})
    assert isinstance(decision, Retry)
    assert decision.result.outcome is Outcome.RETRY_SCHEDULED
    assert decision.failure.code == "tenant_not_ready"
    assert decision.queue == tier_queue(1.0)
    assert decision.delay == 1.0  # no jitter in this policy
    assert decision.outage is False
    assert decision.headers["x-attempt"] == 2
    assert decision.headers["x-trace"] == "kept"
    assert decision.headers["x-original-routing-key"] == "user.created"
    assert [a["code"] for a in decision.headers["x-attempts"]] == ["tenant_not_ready"]
    # Its second attempt goes to the next tier; the routing key it came back with is not
    # the one it keeps.
    second = fleet.decide(user, headers=decision.headers, routing_key="provisioning.retry")
    assert isinstance(second, Retry)
    assert second.queue == tier_queue(5.0)
    assert second.headers["x-original-routing-key"] == "user.created"
    assert second.headers["x-attempt"] == 3


def test_a_directory_outage_is_retried_and_drops_the_connection(fleet: MemoryFleet) -> None:
    faulty = FaultyDirectory(fleet.directory, 1, transient=True)
    sessions = fleet.sessions(faulty)
    first = sessions.open()

    envelope = created(fleet)
    delivery = Delivery(encode(envelope), "tenant.created", envelope.id, 1, "suite", {})
    decision = decide(delivery, sessions, RETRIES, POLICY)
    assert isinstance(decision, Retry)
    assert decision.failure.code == "directory_unavailable"
    assert decision.outage is True  # the worker pauses
    assert sessions.open() is not first  # and reconnects for the next message


def test_a_permanent_failure_is_dead_lettered_with_why_and_no_plaintext(
    fleet: MemoryFleet,
) -> None:
    assert isinstance(fleet.decide(created(fleet, max_users=1)), Done)  # the admin fills it
    user = fleet.event("user.created", user_data("contoso", "j.doe"))
    decision = fleet.decide(user)
    assert isinstance(decision, DeadLetter)
    assert decision.failure.code == "quota_exceeded"
    assert decision.headers["x-error-code"] == "quota_exceeded"
    assert decision.headers["x-tenant"] == "contoso"
    assert decision.headers["x-dead-letter-id"]
    assert decision.routing_key == "user.created"
    assert decision.body == encode(user)  # sealed: kept byte for byte
    # A plaintext password a producer slipped in is removed from the stored copy.
    raw = msgpack.unpackb(encode(user), raw=False)
    raw["data"]["password"] = PASSWORD
    slipped = fleet.decide(msgpack.packb(raw, use_bin_type=True), routing_key="user.created")
    assert isinstance(slipped, DeadLetter)
    assert PASSWORD.encode() not in slipped.body
    assert PLAINTEXT_MARKER.encode() in slipped.body
    assert slipped.headers["x-redacted"] == ["data.password"]


def test_an_unknown_producer_and_a_bad_body_are_dead_lettered_untouched(
    fleet: MemoryFleet,
) -> None:
    before = fleet.directory.dump()
    stranger = fleet.decide(created(fleet), producer="portal")
    assert isinstance(stranger, DeadLetter)
    assert stranger.failure.code == "unauthorized_producer"
    garbage = fleet.decide(b"\xc1 not msgpack", routing_key="tenant.created")
    assert isinstance(garbage, DeadLetter)
    assert garbage.failure.code == "malformed_msgpack"
    assert garbage.result.event_type == "unknown"
    assert fleet.directory.dump() == before


def test_a_bug_is_dead_lettered_as_internal_error_with_its_traceback(
    fleet: MemoryFleet,
) -> None:
    class Broken(FaultyDirectory):
        def search(
            self, base: str, ldap_filter: str, scope: Scope, attributes: Sequence[str]
        ) -> list[Entry]:
            del ldap_filter, scope, attributes
            raise KeyError(f"a bug in {base}")

    decision = fleet.decide(created(fleet), directory=Broken(fleet.directory))
    assert isinstance(decision, DeadLetter)
    assert decision.failure.code == "internal_error"
    assert decision.failure.traceback is not None
    assert "KeyError" in decision.headers["x-traceback"]


def test_the_last_retry_undoes_the_job_and_dead_letters_it(fleet: MemoryFleet) -> None:
    before = fleet.directory.dump()
    envelope = created(fleet)
    # The first attempt makes 4 writes, then the DC gives out; so do the next two.
    decisions = []
    headers: dict[str, object] = {}
    for fail_at in (5, 1, 1):
        decision = fleet.decide(
            envelope,
            directory=FaultyDirectory(fleet.directory, fail_at, transient=True),
            headers=headers,
        )
        decisions.append(decision)
        headers = getattr(decision, "headers", {})
    assert [type(d) for d in decisions] == [Retry, Retry, DeadLetter]
    last = decisions[-1]
    assert isinstance(last, DeadLetter)
    assert (last.failure.code, last.failure.attempt_code) == (
        "retries_exhausted",
        "directory_unavailable",
    )
    assert [a["code"] for a in last.headers["x-attempts"]] == ["directory_unavailable"] * 3
    assert fleet.directory.dump() == before  # the first attempt's OU, groups... are gone


def test_an_undo_that_fails_dead_letters_as_rollback_incomplete(fleet: MemoryFleet) -> None:
    envelope = created(fleet)
    headers: dict[str, object] = {}
    for attempt, (fail_at, fail_deletes) in enumerate(((5, False), (1, False), (1, True))):
        decision = fleet.decide(
            envelope,
            directory=FaultyDirectory(
                fleet.directory, fail_at, transient=True, fail_deletes=fail_deletes
            ),
            headers=headers,
        )
        headers = getattr(decision, "headers", {})
        assert isinstance(decision, Retry if attempt < 2 else DeadLetter)
    assert isinstance(decision, DeadLetter)
    assert decision.failure.code == "rollback_incomplete"
    assert names.tenant_dn("contoso", BASE) in decision.failure.message
    found = fleet.directory.search(
        names.tenants_dn(BASE), "(objectClass=organizationalUnit)", Scope.ONE_LEVEL, ["ou"]
    )
    assert [e.first("ou") for e in found] == ["contoso"]  # what it names is still there
