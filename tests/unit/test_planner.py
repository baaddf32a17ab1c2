from __future__ import annotations

from datetime import UTC, datetime

import pytest

from messages.envelope import Envelope
from messages.events import CATALOGUE, AdminAccount, Event, TenantCreated, UserCreated
from workers.errors import DependencyNotReady
from workers.provisioning import planner
from workers.provisioning.realm import Realm
from workers.provisioning.steps import CreateEntry, CreateUser, EnsureMembers, ProtectTenantOu

REALM = Realm(
    "DC=hosting,DC=test",
    "S-1-5-21-1-2-3",
    "CN=svc,CN=Users,DC=hosting,DC=test",
    "S-1-5-21-1-2-3-1105",
)


def test_every_event_type_has_exactly_one_planner() -> None:
    stateless, stateful = set(planner._WITHOUT_STATE), set(planner._WITH_STATE)
    assert not stateless & stateful
    assert stateless | stateful == set(CATALOGUE.values())


def envelope(data: Event) -> Envelope:
    return Envelope(
        id="m", idempotency_key="k", occurred_at=datetime(2026, 1, 1, tzinfo=UTC), data=data
    )


def test_tenant_created_plans_the_tenant_in_a_safe_order() -> None:
    event = TenantCreated(
        "contoso", "Contoso", ("contoso.example",), AdminAccount("admin", "A", "B")
    )
    plan = planner.plan(envelope(event), REALM, None)
    kinds = [type(step) for step in plan.steps]
    # The OU, then its groups, then the lock-down (which needs their SIDs), before any user.
    assert kinds == [
        CreateEntry,
        CreateEntry,
        CreateEntry,
        ProtectTenantOu,
        CreateEntry,
        CreateUser,
        EnsureMembers,
        EnsureMembers,
    ]
    assert plan.all_or_nothing
    ou = plan.steps[0]
    assert isinstance(ou, CreateEntry)
    assert ou.dn == "OU=contoso,OU=Tenants,DC=hosting,DC=test"
    assert "nTSecurityDescriptor" in ou.attributes  # born locked


def test_a_user_before_its_tenant_is_not_ready() -> None:
    event = UserCreated("contoso", "jdoe", "J", "D")
    with pytest.raises(DependencyNotReady):
        planner.plan(envelope(event), REALM, None)
