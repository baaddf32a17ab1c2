"""Tenants cannot see or touch each other: a matrix over 3 tenants, as each admin and user.

Every negative check stands beside a positive control on the same connection (the
tenant's own objects found by the same search, its own objects written by the same
account), so that a failed bind or a wrong base cannot pass for isolation.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import ldap3
import pytest

from tests.support import engine, ldap_oracle
from tests.support.platform import SuitePlatform

BASE = "DC=hosting,DC=test"
PASSWORD = "Iso-Test-Passw0rd!"


@dataclass(frozen=True)
class Tenant:
    id: str

    @property
    def ou(self) -> str:
        return f"OU={self.id},OU=Tenants,{BASE}"

    @property
    def admin_upn(self) -> str:
        return f"admin@{self.id}.example"

    @property
    def user_upn(self) -> str:
        return f"worker.bee@{self.id}.example"

    @property
    def admin_dn(self) -> str:
        return f"CN=admin,{self.ou}"

    @property
    def user_dn(self) -> str:
        return f"CN=worker.bee,{self.ou}"

    @property
    def users_group(self) -> str:
        return f"CN=Tenant Users,{self.ou}"


@pytest.fixture(scope="module")
def tenants(platform: SuitePlatform) -> list[Tenant]:
    run = secrets.token_hex(3)
    made = [Tenant(f"iso{letter}-{run}") for letter in "abc"]
    for t in made:
        engine.run(
            platform,
            engine.event(
                platform,
                "tenant.created",
                engine.tenant_data(t.id, admin_password=PASSWORD),
                f"{t.id}-created",
            ),
        )
        engine.run(
            platform,
            engine.event(
                platform,
                "user.created",
                {
                    "tenant": t.id,
                    "username": "worker.bee",
                    "given_name": "Worker",
                    "surname": "Bee",
                    "password": PASSWORD,
                },
                f"{t.id}-user",
            ),
        )
    return made


def dns(
    connection: ldap3.Connection, ldap_filter: str, base: str = BASE, scope: str = ldap3.SUBTREE
) -> set[str]:
    connection.search(base, ldap_filter, scope)
    return {r["dn"].lower() for r in connection.response if r.get("type") == "searchResEntry"}


def under(found: set[str], ou: str) -> set[str]:
    return {dn for dn in found if dn.endswith(ou.lower())}


PRINCIPALS = ["admin", "user"]
Seat = tuple[Tenant, list[Tenant], str, ldap3.Connection]


@pytest.fixture(
    params=[(i, p) for i in range(3) for p in PRINCIPALS],
    ids=lambda ip: f"tenant{ip[0]}-{ip[1]}",
)
def seat(
    request: pytest.FixtureRequest, platform: SuitePlatform, tenants: list[Tenant]
) -> Iterator[Seat]:
    index, principal = request.param
    me = tenants[index]
    others = [t for t in tenants if t is not me]
    upn = me.admin_upn if principal == "admin" else me.user_upn
    with ldap_oracle.bind(platform, upn, PASSWORD) as connection:
        assert connection.bound, connection.result
        yield me, others, principal, connection


def test_no_other_tenant_is_visible(seat: Seat) -> None:
    me, others, _, conn = seat
    for ldap_filter, own in (
        ("(objectClass=organizationalUnit)", {me.ou.lower()}),
        ("(objectClass=user)", {me.admin_dn.lower(), me.user_dn.lower()}),
        ("(objectClass=group)", {me.users_group.lower()}),
    ):
        found = dns(conn, ldap_filter)
        assert own <= found, (ldap_filter, found)  # positive control: same search, own objects
        for other in others:
            assert not under(found, other.ou), (ldap_filter, other.id)
    listed = dns(conn, "(objectClass=*)", f"OU=Tenants,{BASE}", ldap3.LEVEL)
    assert me.ou.lower() in listed
    assert not any(under(listed, o.ou) for o in others)
    for other in others:
        for dn in (other.ou, other.admin_dn, other.user_dn, other.users_group):
            assert ldap_oracle.read(conn, me.admin_dn, ["cn"]) is not None  # same connection
            assert ldap_oracle.read(conn, dn, ["cn"]) is None, dn


def test_nothing_outside_the_own_tenant_is_writable(seat: Seat) -> None:
    me, others, principal, conn = seat
    note = {"description": [(ldap3.MODIFY_REPLACE, [f"touched by {me.id}"])]}
    if principal == "admin":
        assert conn.modify(me.user_dn, note), conn.result  # positive control
    else:
        assert ldap_oracle.read(conn, me.admin_dn, ["cn"]) is not None  # positive control
        assert not conn.modify(me.admin_dn, note)  # a user administers nothing
        assert conn.result["description"] == "insufficientAccessRights"
    targets = [f"OU=Tenants,{BASE}", f"CN=Tenant Settings,{me.ou}", me.ou]
    for other in others:
        targets += [other.ou, other.admin_dn, other.user_dn, other.users_group]
    for dn in targets:
        assert not conn.modify(dn, note), dn
        assert conn.result["description"] in {"insufficientAccessRights", "noSuchObject"}, dn
    person = ["top", "person", "organizationalPerson", "user"]
    for other in others:
        assert not conn.add(f"CN=intruder,{other.ou}", person, {"sAMAccountName": "intruder1"})
        assert not conn.modify(other.users_group, {"member": [(ldap3.MODIFY_ADD, [me.user_dn])]})


@pytest.fixture(params=range(3), ids=lambda i: f"tenant{i}-admin")
def admin_seat(
    request: pytest.FixtureRequest, platform: SuitePlatform, tenants: list[Tenant]
) -> Iterator[tuple[Tenant, ldap3.Connection]]:
    me = tenants[request.param]
    with ldap_oracle.bind(platform, me.admin_upn, PASSWORD) as connection:
        assert connection.bound, connection.result
        yield me, connection


def test_an_admin_manages_its_own_users_and_groups(
    admin_seat: tuple[Tenant, ldap3.Connection],
) -> None:
    me, conn = admin_seat
    group = f"CN=Project Team,{me.ou}"
    assert conn.add(group, ["group"], {"sAMAccountName": f"{me.id}-team"}), conn.result
    try:
        assert conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [me.user_dn])]}), conn.result
        user = f"CN=temp.user,{me.ou}"
        person = ["top", "person", "organizationalPerson", "user"]
        assert conn.add(user, person, {"sAMAccountName": f"t{secrets.token_hex(5)}"}), conn.result
        assert conn.delete(user), conn.result
    finally:
        assert conn.delete(group), conn.result
