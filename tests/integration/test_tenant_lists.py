"""The tenant's per-user lists (quota reservations, suspensions) in the settings object's
``keywords``, and tenants made before they moved there, whose lists the earlier version
wrote into ``msDS-Settings``: read in both places, moved by the bootstrap.

Each test makes the "before" state with the Administrator oracle, as the earlier version
wrote it, and checks the outcome with the oracle too."""

from __future__ import annotations

import dataclasses
import secrets

import ldap3

from tests.support import engine, ldap_oracle
from tests.support.platform import SuitePlatform
from workers.provisioning import engine as provisioning_engine
from workers.provisioning.steps import ReserveSlot

BASE = "DC=hosting,DC=test"
PASSWORD = "Lists-Test-Passw0rd!"


def settings_dn(tenant: str) -> str:
    return f"CN=Tenant Settings,OU={tenant},OU=Tenants,{BASE}"


def lists(admin: ldap3.Connection, tenant: str) -> tuple[list[str], list[str]]:
    """(msDS-Settings, keywords) of the tenant's settings object, each sorted."""
    entry = ldap_oracle.read(admin, settings_dn(tenant), ["msDS-Settings", "keywords"])
    assert entry is not None
    return sorted(entry["msDS-Settings"]), sorted(entry.get("keywords", []))


def as_before(admin: ldap3.Connection, tenant: str, kind: str, *names_: str) -> None:
    """Move ``names_`` of the list ``kind`` back into msDS-Settings, as the earlier version
    kept them (``reserved=<name>``), in one modify."""
    changes: dict[str, list[tuple[str, list[str]]]] = {
        "msDS-Settings": [(ldap3.MODIFY_ADD, [f"{kind}={n}" for n in names_])]
    }
    present = lists(admin, tenant)[1]
    gone = [f"{kind}:{n}" for n in names_ if f"{kind}:{n}" in present]
    if gone:
        changes["keywords"] = [(ldap3.MODIFY_DELETE, gone)]
    assert admin.modify(settings_dn(tenant), changes), admin.result


def user(platform: SuitePlatform, tenant: str, username: str) -> None:
    engine.create_user(platform, tenant, username, PASSWORD)


def send(platform: SuitePlatform, tenant: str, kind: str, data: dict[str, str]) -> None:
    envelope = engine.event(
        platform, kind, {"tenant": tenant, **data}, f"{tenant}-{kind}-{secrets.token_hex(2)}"
    )
    engine.run(platform, envelope)


def reserve(platform: SuitePlatform, tenant: str, username: str, *, planned: bool) -> bool:
    """Apply the quota step of a ``user.created`` for ``username`` alone, as the engine
    plans it now (``planned``: with the counter it read; otherwise reading it again, as
    after a lost race); True if it counted the user."""
    envelope = engine.event(
        platform,
        "user.created",
        {"tenant": tenant, "username": username, "given_name": "R", "surname": "S"},
        f"{tenant}-{username}-{secrets.token_hex(2)}",
    )
    with engine.connected(platform) as directory:
        ctx = engine.context(platform, directory, envelope)
        plan = provisioning_engine.plan_for(envelope, directory, ctx.realm)
        [step] = [s for s in plan.steps if isinstance(s, ReserveSlot)]
        if not planned:
            step = dataclasses.replace(step, expected_users=None)
        return step.apply(directory, ctx) is not None


def test_a_reservation_is_counted_once_wherever_it_is_held(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant = engine.create_tenant(platform, "ls", PASSWORD, max_users=5)
    user(platform, tenant, "new")
    user(platform, tenant, "old")
    as_before(admin, tenant, "reserved", "old")
    settings, keywords = lists(admin, tenant)
    assert "users=3" in settings
    assert "reserved=old" in settings
    assert keywords == ["reserved:admin", "reserved:new"]
    # Redeliveries, planned from the counter as it stands and from no counter: nothing twice.
    for username in ("new", "old"):
        for planned in (True, False):
            assert not reserve(platform, tenant, username, planned=planned), (username, planned)
    assert lists(admin, tenant) == (settings, keywords)
    # Positive control, the same step and connection: a user not yet counted is counted.
    assert reserve(platform, tenant, "fresh", planned=True)
    settings, keywords = lists(admin, tenant)
    assert "users=4" in settings
    assert keywords == ["reserved:admin", "reserved:fresh", "reserved:new"]


def test_a_delete_releases_a_reservation_held_the_old_way(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant = engine.create_tenant(platform, "ls", PASSWORD, max_users=2)
    user(platform, tenant, "old")
    as_before(admin, tenant, "reserved", "old")
    send(platform, tenant, "user.deleted", {"username": "old"})
    settings, keywords = lists(admin, tenant)
    assert "users=1" in settings
    assert not [v for v in settings if v.startswith("reserved")], settings
    assert keywords == ["reserved:admin"]
    user(platform, tenant, "next")  # the freed slot is usable
    assert "users=2" in lists(admin, tenant)[0]


def test_a_resume_enables_users_suspended_the_old_way(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant = engine.create_tenant(platform, "ls", PASSWORD)
    user(platform, tenant, "a")
    user(platform, tenant, "b")
    send(platform, tenant, "tenant.suspended", {})
    _, keywords = lists(admin, tenant)
    assert {"suspended:a", "suspended:b", "suspended:admin"} <= set(keywords)
    as_before(admin, tenant, "suspended", "a")
    assert "suspended=a" in lists(admin, tenant)[0]
    send(platform, tenant, "tenant.resumed", {})
    settings, keywords = lists(admin, tenant)
    assert not [v for v in settings + keywords if v.startswith("suspended")], (settings, keywords)
    for username in ("a", "b", "admin"):
        with ldap_oracle.bind(platform, f"{username}@{tenant}.example", PASSWORD) as conn:
            assert conn.bound, (username, conn.result)


def test_the_bootstrap_moves_the_lists_into_keywords(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant = engine.create_tenant(platform, "ls", PASSWORD)
    user(platform, tenant, "a")
    as_before(admin, tenant, "reserved", "admin", "a")
    assert admin.modify(
        settings_dn(tenant), {"msDS-Settings": [(ldap3.MODIFY_ADD, ["suspended=a"])]}
    ), admin.result
    before, keywords = lists(admin, tenant)
    assert keywords == []
    moved = platform.bootstrap()
    assert moved.returncode == 0, moved.stderr
    assert f"moved 3 per-user value(s) of {settings_dn(tenant)} into keywords" in moved.stdout
    settings, keywords = lists(admin, tenant)
    assert settings == [v for v in before if not v.startswith(("reserved=", "suspended="))]
    assert "users=2" in settings
    assert keywords == ["reserved:a", "reserved:admin", "suspended:a"]
    again = platform.bootstrap()
    assert again.returncode == 0, again.stderr
    assert settings_dn(tenant) not in again.stdout
    assert lists(admin, tenant) == (settings, keywords)
