"""tenant.created never leaves a half-made tenant: a failure at every write is rolled back.

The fault is injected by a wrapper in the test (no hook in production code), and the
directory is compared, entry by entry and attribute by attribute, with a snapshot taken
before: the tenant's subtree, its groups and members, the Password Settings Container,
and OU=Tenants with its DACL.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

import ldap3
import pytest

from tests.support import engine, ldap_oracle
from tests.support.faults import FaultyDirectory, InjectedFault
from tests.support.platform import SUITE_PRODUCER, SuitePlatform
from workers.directory.port import (
    Directory,
    DirectoryUnavailable,
)
from workers.errors import RollbackIncomplete
from workers.provisioning import engine as workers_engine
from workers.provisioning import planner, tenant_state
from workers.runtime.producers import ProducerPolicy

BASE = "DC=hosting,DC=test"
WATCHED = [f"OU=Tenants,{BASE}", f"CN=Password Settings Container,CN=System,{BASE}"]
WRITES_OF_TENANT_CREATED = 8  # OU, 2 groups, DACL, settings, admin, 2 memberships


@pytest.fixture(scope="module")
def tenant_id() -> str:
    return f"rb-{secrets.token_hex(3)}"


def created(platform: SuitePlatform, tenant: str) -> Any:
    return engine.event(
        platform,
        "tenant.created",
        engine.tenant_data(tenant, admin_password="Rollback-Passw0rd!", max_users=5),
        f"{tenant}-created",
    )


def test_tenant_created_writes_what_the_plan_says(platform: SuitePlatform) -> None:
    tenant = f"rbc-{secrets.token_hex(3)}"
    with engine.connected(platform) as real:
        counting = FaultyDirectory(real)
        engine.run(platform, created(platform, tenant), counting)
    assert len(counting.writes) == WRITES_OF_TENANT_CREATED, counting.writes


@pytest.mark.parametrize("fail_at", range(1, WRITES_OF_TENANT_CREATED + 1))
def test_a_failure_at_any_write_leaves_the_directory_as_it_was(
    platform: SuitePlatform, admin: ldap3.Connection, tenant_id: str, fail_at: int
) -> None:
    before = ldap_oracle.snapshot(admin, WATCHED)
    with engine.connected(platform) as real:
        faulty = FaultyDirectory(real, fail_at)
        with pytest.raises(InjectedFault):
            engine.run(platform, created(platform, tenant_id), faulty)
        assert faulty.faulted == faulty.writes[fail_at - 1]  # the fault landed as aimed
    assert ldap_oracle.snapshot(admin, WATCHED) == before


def test_an_undo_that_fails_names_every_leftover(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant = f"rbl-{secrets.token_hex(3)}"
    before = ldap_oracle.snapshot(admin, WATCHED)
    envelope = created(platform, tenant)
    with engine.connected(platform) as real:
        faulty = FaultyDirectory(real, WRITES_OF_TENANT_CREATED, fail_deletes=True)
        with pytest.raises(RollbackIncomplete) as info:
            engine.run(platform, envelope, faulty)
        ou = f"OU={tenant},OU=Tenants,{BASE}"
        leftovers = "\n".join(info.value.leftovers)
        for dn in (
            f"CN=admin,{ou}",
            f"CN=Tenant Settings,{ou}",
            f"CN=Tenant Users,{ou}",
            f"CN=Tenant Admins,{ou}",
            ou,
        ):
            assert dn in leftovers, dn
        assert info.value.code == "rollback_incomplete"
        assert isinstance(info.value.cause, InjectedFault)
        # A later rollback of the same job (a fresh journal) removes the job's objects.
        ctx = engine.context(platform, real, envelope)
        state = tenant_state.read(real, tenant, BASE)
        plan = planner.plan(envelope, ctx.realm, state)
        assert workers_engine.rollback(plan, [], real, ctx) == []
    assert ldap_oracle.snapshot(admin, WATCHED) == before


@pytest.mark.parametrize("fail_at", [2, 5, 7])
def test_an_outage_mid_tenant_is_not_undone_and_a_retry_completes_it(
    platform: SuitePlatform, admin: ldap3.Connection, fail_at: int
) -> None:
    tenant = f"rbt-{secrets.token_hex(3)}"
    envelope = created(platform, tenant)
    with engine.connected(platform) as real:
        faulty = FaultyDirectory(real, fail_at, transient=True)
        with pytest.raises(DirectoryUnavailable):
            engine.run(platform, envelope, faulty)
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    assert ldap_oracle.read(admin, ou, ["ou"]) is not None  # kept for the retry
    details = engine.run(platform, envelope)
    assert details["admin"]["dn"] == f"CN=admin,{ou}"
    members = ldap_oracle.read(admin, f"CN=Tenant Admins,{ou}", ["member"])
    assert members is not None
    assert members["member"] == [f"CN=admin,{ou}"]
    assert ldap_oracle.dacl_sddl(admin, ou).startswith("D:P(")


def test_a_failed_redelivery_of_a_finished_tenant_undoes_nothing(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant = f"rbf-{secrets.token_hex(3)}"
    envelope = created(platform, tenant)
    engine.run(platform, envelope)
    finished = ldap_oracle.snapshot(admin, WATCHED, ldap_oracle.CHANGE_METADATA)
    with engine.connected(platform) as real:
        faulty = FaultyDirectory(real, 1)  # the redelivery's first write fails
        with pytest.raises(InjectedFault):
            engine.run(platform, envelope, faulty)
        assert faulty.faulted is not None
    assert ldap_oracle.snapshot(admin, WATCHED, ldap_oracle.CHANGE_METADATA) == finished


class FaultySessions:
    """Sessions over a directory whose writes fail as the test says."""

    def __init__(self, platform: SuitePlatform, real: Directory, faulty: FaultyDirectory) -> None:
        self.platform, self.real, self.faulty = platform, real, faulty

    def open(self) -> Any:
        from workers.delivery.session import Session  # noqa: PLC0415
        from workers.provisioning.keys import KeyRing  # noqa: PLC0415
        from workers.provisioning.realm import read_realm  # noqa: PLC0415

        s = engine.settings(self.platform)
        realm = read_realm(self.real, s.ldap_bind_dn)
        return Session(self.faulty, realm, KeyRing.from_settings(s), s.sam_digits)

    def acting(self, tenant: str, key: str) -> Any:
        del tenant, key
        return contextlib.nullcontext(self.open())

    def drop(self) -> None:
        """The test keeps its connection."""


def test_a_tenant_whose_retries_run_out_is_undone(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    from messages.envelope import encode  # noqa: PLC0415
    from workers.delivery.decisions import DeadLetter, Delivery, Retry, decide  # noqa: PLC0415
    from workers.runtime.retry import RetryPolicy  # noqa: PLC0415

    tenant = f"rbx-{secrets.token_hex(3)}"
    before = ldap_oracle.snapshot(admin, WATCHED)
    body = encode(created(platform, tenant))
    policy = RetryPolicy((0.1,), max_attempts=3)
    producers = ProducerPolicy.parse(platform.suite_policy)
    with engine.connected(platform) as real:
        decisions = []
        # Attempt 1 gets 5 writes in before the DC gives out; later attempts fail at once.
        for attempt, fail_at in ((1, 6), (2, 1), (3, 1)):
            faulty = FaultyDirectory(real, fail_at, transient=True)
            sessions = FaultySessions(platform, real, faulty)
            delivery = Delivery(body, "tenant.created", "m", attempt, SUITE_PRODUCER)
            decisions.append(decide(delivery, sessions, policy, producers))
        ou = f"OU={tenant},OU=Tenants,{BASE}"
    assert [isinstance(d, Retry) for d in decisions] == [True, True, False]
    assert ldap_oracle.read(admin, ou, ["ou"]) is None  # the first attempt's work is undone
    assert isinstance(decisions[-1], DeadLetter)
    last = decisions[-1].failure
    assert (last.code, last.attempt_code) == ("retries_exhausted", "directory_unavailable")
    assert ldap_oracle.snapshot(admin, WATCHED) == before
