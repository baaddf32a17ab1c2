"""A fleet that knows two DCs pins each tenant to one, and fails over to the other only
once it provably holds what the first wrote for the tenant (``workers.delivery.pinning``).

The trap of multi-master replication, set on purpose: DC1's outbound replication is held
back (``dc1 outbound off``), so that what the fleet writes on DC1 is not on DC2 when DC1
stops.  The jobs run in-process through the worker's own decision (``decide``) and
sessions, against both real DCs; every outcome is read back from each DC on its own, as
Administrator, with plain ldap3.

- a duplicate of a user.created whose first copy was applied on DC1: while DC1 is down it
  waits (``dc_catching_up``) and DC2 is untouched; once DC1 answers it is answered there
  as a duplicate; when DC2 does hold the first copy, it is answered on DC2 as a duplicate;
- a user.created right after its tenant.created, the same two ways;
- the way back: a tenant that failed over to DC2 stays there while DC1, back, lacks DC2's
  writes (DC2's outbound held back), and returns to DC1 once DC1 has them.

In every case, once replication has run, each DC holds the user once, with the same
objectGUID, and the tenant's quota counter counts it once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import ldap3
import pytest

from bench.drill import model, observe, scenario
from bench.drill.run import Drill, Faults, render
from bench.two_dcs import logged
from messages.envelope import Envelope, encode
from messages.results import Outcome
from tests.support import broker, engine, ldap_oracle
from tests.support.dcs import DC_NAMES, TwoDcs
from tests.support.drill import suite_target
from tests.support.platform import SUITE_PRODUCER, SuitePlatform
from workers.cli.worker import directory_factories
from workers.delivery.decisions import Decision, Delivery, Done, Retry, decide
from workers.delivery.pinning import tenant_order
from workers.delivery.session import RETRY_DC_AFTER_SECONDS, Sessions
from workers.provisioning.keys import KeyRing
from workers.runtime.producers import ProducerPolicy
from workers.runtime.retry import RetryPolicy
from workers.runtime.settings import Settings

BASE = "DC=hosting,DC=test"
PASSWORD = "Failover-Passw0rd!"  # the test's throwaway accounts
POLICY = RetryPolicy((0.1,), max_attempts=5)
WAITING = {"dc_catching_up", "directory_unavailable"}


@pytest.fixture(scope="module")
def dcs(platform: SuitePlatform) -> Iterator[TwoDcs]:
    with TwoDcs.running(platform) as two:
        yield two


class Fleet:
    """One worker's decisions over both DCs, as ``provisioner worker`` makes them."""

    def __init__(self, dcs: TwoDcs) -> None:
        self.dcs = dcs
        self.settings = Settings.from_env(dcs.settings_env)
        self.sessions = Sessions(
            directory_factories(self.settings),
            self.settings.ldap_bind_dn,
            KeyRing.from_settings(self.settings),
            self.settings.sam_digits,
        )
        self.producers = ProducerPolicy.parse(dcs.platform.suite_policy)

    def decide(self, envelope: Envelope, message_id: str | None = None) -> Decision:
        body = encode(envelope) if message_id is None else encode(_with_id(envelope, message_id))
        delivery = Delivery(body, envelope.type, message_id or envelope.id, 1, SUITE_PRODUCER)
        return decide(delivery, self.sessions, POLICY, self.producers)

    def retried(self, envelope: Envelope, message_id: str | None = None) -> Decision:
        """As the retry queues would: again while it waits (for a DC that has just come
        back to be asked again, or to catch up), for up to 30 s; each wait a wait."""
        deadline = time.monotonic() + 30
        while True:
            decision = self.decide(envelope, message_id)
            if not isinstance(decision, Retry) or time.monotonic() > deadline:
                return decision
            assert decision.failure.code in WAITING, decision.failure
            time.sleep(0.5)

    def close(self) -> None:
        self.sessions.drop()


def _with_id(envelope: Envelope, message_id: str) -> Envelope:
    """The same intent republished: same key and data, a new message id."""
    return replace(envelope, id=message_id)


@pytest.fixture
def fleet(dcs: TwoDcs) -> Iterator[Fleet]:
    one = Fleet(dcs)
    yield one
    one.close()


def tenant_preferring(dc: int) -> str:
    """A new tenant id whose preferred DC is DC ``dc``."""
    while True:
        tenant = f"fo-{secrets.token_hex(3)}"
        if tenant_order(tenant, DC_NAMES)[0] == DC_NAMES[dc - 1]:
            return tenant


def tenant_created(platform: SuitePlatform, tenant: str) -> Envelope:
    data = engine.tenant_data(tenant, admin_password=PASSWORD, max_users=5)
    return engine.event(platform, "tenant.created", data, f"{tenant}-created")


def user_created(platform: SuitePlatform, tenant: str, username: str) -> Envelope:
    data = {
        "tenant": tenant,
        "username": username,
        "given_name": "Fay",
        "surname": "Lover",
        "password": PASSWORD,
    }
    return engine.event(platform, "user.created", data, f"{tenant}-{username}-created")


def done_on(decision: Decision, outcome: Outcome, dc: int) -> None:
    assert isinstance(decision, Done), decision
    assert decision.result.outcome is outcome, decision.result
    assert decision.dc == DC_NAMES[dc - 1], decision.dc


def waits(decision: Decision) -> None:
    assert isinstance(decision, Retry), decision
    assert decision.failure.code == "dc_catching_up", decision.failure


def users_named(connection: ldap3.Connection, tenant: str, username: str) -> list[str]:
    """The objectGUIDs of the tenant's users called ``username`` on that DC."""
    found = connection.search(
        f"OU={tenant},OU=Tenants,{BASE}",
        f"(&(objectClass=user)(cn={username}))",
        ldap3.SUBTREE,
        attributes=["objectGUID"],
    )
    if not found:
        assert connection.result["description"] in {"success", "noSuchObject"}, connection.result
        return []
    return sorted(str(e["attributes"]["objectGUID"]) for e in connection.response)


def quota(connection: ldap3.Connection, tenant: str) -> dict[str, Any]:
    entry = ldap_oracle.read(
        connection,
        f"CN=Tenant Settings,OU={tenant},OU=Tenants,{BASE}",
        ["msDS-Settings", "keywords"],
    )
    assert entry is not None, f"{tenant} has no settings on this DC"
    return {
        "users": [v for v in entry["msDS-Settings"] if v.startswith("users=")],
        "reserved": sorted(v for v in entry.get("keywords", []) if v.startswith("reserved:")),
    }


def once_on_both(dcs: TwoDcs, tenant: str, username: str, users: int) -> None:
    """Replication run: each DC holds the user once, the same object, counted once
    (``users``: the tenant's count, its admin included)."""
    dcs.sync()
    dc1, dc2 = dcs.administrator(1), dcs.administrator(2)
    try:
        on_dc1, on_dc2 = users_named(dc1, tenant, username), users_named(dc2, tenant, username)
        assert len(on_dc1) == 1, on_dc1
        assert on_dc1 == on_dc2
        assert quota(dc1, tenant) == quota(dc2, tenant)
        assert quota(dc1, tenant)["users"] == [f"users={users}"]
        assert f"reserved:{username}" in quota(dc1, tenant)["reserved"]
    finally:
        dc1.unbind()
        dc2.unbind()


def test_a_duplicate_waits_for_the_dc_that_holds_its_first_copy(dcs: TwoDcs, fleet: Fleet) -> None:
    platform = dcs.platform
    tenant = tenant_preferring(1)
    done_on(fleet.decide(tenant_created(platform, tenant)), Outcome.SUCCEEDED, 1)
    dcs.sync()
    dc2 = dcs.administrator(2)
    counted = quota(dc2, tenant)  # the admin
    assert counted["users"] == ["users=1"]
    dc2.unbind()
    first = user_created(platform, tenant, "dup")
    with dcs.restored():
        dcs.outbound(1, on=False)
        done_on(fleet.decide(first), Outcome.SUCCEEDED, 1)
        dcs.stop(1)
        # The duplicate, while DC1 is down and DC2 lacks the first copy: it waits.
        waits(fleet.decide(first, message_id="dup-again"))
        dc2 = dcs.administrator(2)
        assert users_named(dc2, tenant, "dup") == []  # DC2 untouched
        assert quota(dc2, tenant) == counted  # its counter too
        dc2.unbind()
        dcs.start(1)
        # Back: answered on DC1 from its record, with the first copy's details.
        again = fleet.retried(first, message_id="dup-again")
        done_on(again, Outcome.DUPLICATE, 1)
    once_on_both(dcs, tenant, "dup", users=2)


def test_a_duplicate_is_answered_on_the_other_dc_once_it_holds_the_first_copy(
    dcs: TwoDcs, fleet: Fleet
) -> None:
    platform = dcs.platform
    tenant = tenant_preferring(1)
    done_on(fleet.decide(tenant_created(platform, tenant)), Outcome.SUCCEEDED, 1)
    first = user_created(platform, tenant, "dup")
    applied = fleet.decide(first)
    done_on(applied, Outcome.SUCCEEDED, 1)
    dcs.sync()
    with dcs.restored():
        dcs.stop(1)
        again = fleet.decide(first, message_id="dup-again")
        done_on(again, Outcome.DUPLICATE, 2)
        assert isinstance(applied, Done)
        assert isinstance(again, Done)
        assert again.result.details == applied.result.details
    once_on_both(dcs, tenant, "dup", users=2)


def test_a_user_right_after_its_tenant_waits_for_the_dc_that_made_the_tenant(
    dcs: TwoDcs, fleet: Fleet
) -> None:
    platform = dcs.platform
    tenant = tenant_preferring(1)
    with dcs.restored():
        dcs.outbound(1, on=False)
        done_on(fleet.decide(tenant_created(platform, tenant)), Outcome.SUCCEEDED, 1)
        dcs.stop(1)
        user = user_created(platform, tenant, "early")
        waits(fleet.decide(user))  # not "tenant not found", and nothing on DC2
        dc2 = dcs.administrator(2)
        assert ldap_oracle.read(dc2, f"OU={tenant},OU=Tenants,{BASE}", ["ou"]) is None
        dc2.unbind()
        dcs.start(1)
        done_on(fleet.retried(user), Outcome.SUCCEEDED, 1)
    once_on_both(dcs, tenant, "early", users=2)


def test_a_tenant_fails_over_and_comes_back_once_its_dc_holds_what_was_written_meanwhile(
    dcs: TwoDcs, fleet: Fleet
) -> None:
    platform = dcs.platform
    tenant = tenant_preferring(1)
    done_on(fleet.decide(tenant_created(platform, tenant)), Outcome.SUCCEEDED, 1)
    dcs.sync()
    with dcs.restored():
        dcs.stop(1)
        # DC2 holds the tenant: the user right after it is made there.
        done_on(fleet.decide(user_created(platform, tenant, "away")), Outcome.SUCCEEDED, 2)
        dcs.outbound(2, on=False)
        dcs.start(1)
        # DC1 answers but lacks DC2's user: the tenant stays on DC2.
        time.sleep(RETRY_DC_AFTER_SECONDS)  # DC1 is asked again
        done_on(fleet.decide(user_created(platform, tenant, "still")), Outcome.SUCCEEDED, 2)
        dc1 = dcs.administrator(1)
        assert users_named(dc1, tenant, "away") == []  # DC1 really lacks it
        dc1.unbind()
        dcs.outbound(2, on=True)
        dcs.sync()
        # DC1 holds it all now: the tenant is back on its preferred DC.
        done_on(fleet.decide(user_created(platform, tenant, "home")), Outcome.SUCCEEDED, 1)
    for username in ("away", "still", "home"):
        once_on_both(dcs, tenant, username, users=4)


# -- a fleet of worker processes over both DCs, one DC stopped mid-run -------------------

SHAPE = scenario.Shape(
    tenants=5,
    users_per_tenant=10,
    duplicates=5,
    updated=0,
    disabled=0,
    resets=0,
    enabled=0,
    deleted=0,
    renamed=0,
    tenants_deleted=0,
    poison=0,
)
# DC1 stopped for 15 s once 30 % of the user.created wave is answered, started again
# (with a replication forced each way, as an operator's restart would be followed by);
# a worker SIGKILLed every 5 s besides.
FAULTS = Faults(
    processes=2,
    kill_every=5.0,
    broker_restart_wave=0,
    samba_stop_wave=2,
    at_fraction=0.3,
    samba_down=15.0,
    deadline=600.0,
    dc_stop=("dc1", "stop"),
    dc_start=("dc1", "start"),
)


def mixed_run() -> str:
    """A run id whose tenants prefer each DC: some tenants must fail over."""
    while True:
        run = secrets.token_hex(2)
        preferred = {tenant_order(f"dr{i:02d}-{run}", DC_NAMES)[0] for i in range(SHAPE.tenants)}
        if preferred == set(DC_NAMES):
            return run


def failovers(log: Path, since: float, tenants: set[str]) -> list[float]:
    """Seconds from ``since`` to each success the fleet logged on DC2 for ``tenants``."""
    return sorted(
        e["at"] - since
        for e in logged(log, since)
        if e.get("tenant") in tenants and e.get("dc") == DC_NAMES[1]
    )


def test_five_tenants_over_two_dcs_one_stopped_mid_run_end_the_same_on_both(
    dcs: TwoDcs, tmp_path: Path
) -> None:
    platform = dcs.platform
    broker.purge(broker.WORK, broker.DLQ)
    # The fleet knows both DCs; the report reads DC1 (each DC is read on its own below).
    target = suite_target(platform, tmp_path, dcs.settings_env, dcs.env_of(1))
    played = scenario.build(mixed_run(), SHAPE)
    drill = Drill(target, played, FAULTS)
    with dcs.restored():
        try:
            report = drill.execute()
        finally:
            drill.clean_up()
    print(render(report))
    # Every event answered once for good; the republished ones as duplicates.
    assert len(report.answers) == SHAPE.events
    assert report.republished_once
    assert len(report.republished) == SHAPE.duplicates
    assert report.dead_letters == {}
    stopped = next(f for f in report.faults if f.kind == "Samba stopped")
    assert stopped.progress > 0
    assert stopped.outstanding > 0  # DC1 went down mid-wave
    # Replication settled, each DC read on its own: both equal the model of the events.
    dcs.sync()
    expected = model.expected(played)
    found = []
    for n in (1, 2):
        reader = observe.Reader(dcs.env_of(n), platform.administrator_password)
        try:
            comparison = observe.compare(reader, expected)
        finally:
            reader.close()
        assert comparison.findings == [], f"DC{n}: {comparison.findings}"
        assert comparison.objects_found == comparison.objects_expected > 60
        found.append(comparison.objects_found)
    assert found[0] == found[1]
    # The tenants that prefer DC1 went on on DC2 while DC1 was down.
    assert drill.dc_stopped_at is not None
    on_dc1 = {t for t in played.tenants if tenant_order(t, DC_NAMES)[0] == DC_NAMES[0]}
    moved = failovers(tmp_path / "fleet.log", drill.dc_stopped_at, on_dc1)
    print(
        f"failover: DC1 stopped; first success on DC2 of a DC1 tenant after "
        f"{moved[0] if moved else None} s; {len(moved)} such successes"
    )
