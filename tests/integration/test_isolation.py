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
    """The members and details of the tenant's groups, the details of its users.  It makes
    nothing: users come from the events (a direct add would bypass the tenant's domains
    and quota), and a group it made would be its own to re-permission (docs/engine.md)."""
    me, conn = admin_seat
    group = me.users_group
    admins = f"CN=Tenant Admins,{me.ou}"
    assert conn.modify(admins, {"member": [(ldap3.MODIFY_ADD, [me.user_dn])]}), conn.result
    assert conn.modify(admins, {"member": [(ldap3.MODIFY_DELETE, [me.user_dn])]}), conn.result
    note = {"description": [(ldap3.MODIFY_REPLACE, [f"managed by {me.id}"])]}
    assert conn.modify(group, note), conn.result
    assert conn.modify(me.user_dn, {"department": [(ldap3.MODIFY_REPLACE, ["Hive"])]})
    person = ["top", "person", "organizationalPerson", "user"]
    user = {"sAMAccountName": f"t{secrets.token_hex(5)}"}
    assert not conn.add(f"CN=temp.user,{me.ou}", person, user)
    assert conn.result["description"] == "insufficientAccessRights"
    assert not conn.add(f"CN=Project Team,{me.ou}", ["group"], {"sAMAccountName": f"{me.id}-pt"})
    assert conn.result["description"] == "insufficientAccessRights"
    assert not conn.modify_dn(group, "CN=Renamed")  # the fleet finds its groups by name
    assert conn.result["description"] == "insufficientAccessRights"
    assert not conn.delete(group)
    assert conn.result["description"] == "insufficientAccessRights"


# --------------------------------------------------------------- acting as a tenant admin
#
# What a hostile tenant admin would try with the rights it holds, each beside the right it
# should keep, on the same connection: A's admin against B's domain, B's against C's, C's
# against A's.

REFUSED = "insufficientAccessRights"
RBCD = "msDS-AllowedToActOnBehalfOfOtherIdentity"


def refused(conn: ldap3.Connection, done: bool) -> bool:
    return not done and conn.result["description"] == REFUSED


def victim(tenants: list[Tenant], me: Tenant) -> Tenant:
    return tenants[(tenants.index(me) + 1) % len(tenants)]


def test_an_admin_cannot_claim_another_tenants_identities(
    admin_seat: tuple[Tenant, ldap3.Connection], tenants: list[Tenant]
) -> None:
    me, conn = admin_seat
    other = victim(tenants, me)
    mine = me.user_dn
    assert conn.modify(mine, {"title": [(ldap3.MODIFY_REPLACE, ["Keeper"])]}), conn.result
    assert conn.modify(mine, {"telephoneNumber": [(ldap3.MODIFY_REPLACE, ["+1 555 0100"])]})
    replace = ldap3.MODIFY_REPLACE
    attempts = {
        "userPrincipalName": [(replace, [f"ceo@{other.id}.example"])],
        "servicePrincipalName": [(ldap3.MODIFY_ADD, [f"HTTP/www.{other.id}.example"])],
        "sAMAccountName": [(replace, ["ceo"])],
        "altSecurityIdentities": [(ldap3.MODIFY_ADD, [f"Kerberos:ceo@{other.id.upper()}"])],
        "userAccountControl": [(replace, ["4194816"])],  # + DONT_REQ_PREAUTH
    }
    for attribute, change in attempts.items():
        assert refused(conn, conn.modify(mine, {attribute: change})), (attribute, conn.result)
    # Resource-based constrained delegation: let its own account act as the victim's user.
    sd = "O:S-1-5-32-544D:(A;;0xf01ff;;;S-1-1-0)"
    from winacl.dtyp.security_descriptor import SECURITY_DESCRIPTOR  # noqa: PLC0415

    rbcd = SECURITY_DESCRIPTOR.from_sddl(sd).to_bytes()
    assert refused(conn, conn.modify(mine, {RBCD: [(replace, [rbcd])]})), conn.result
    # A user of its own, made past the events (its quota, its domains): refused.
    person = ["top", "person", "organizationalPerson", "user"]
    squat = {
        "sAMAccountName": f"sq{secrets.token_hex(4)}",
        "userPrincipalName": f"ceo@{other.id}.example",
    }
    assert refused(conn, conn.add(f"CN=ceo,{me.ou}", person, squat)), conn.result


def test_an_admin_cannot_write_permissions_or_ownership(
    admin_seat: tuple[Tenant, ldap3.Connection],
) -> None:
    from ldap3.protocol.microsoft import security_descriptor_control  # noqa: PLC0415

    me, conn = admin_seat
    assert conn.modify(me.users_group, {"info": [(ldap3.MODIFY_REPLACE, ["kept"])]})
    for dn in (me.user_dn, me.users_group, me.ou):
        for flags in (0x04, 0x01):  # the DACL, the owner
            controls = security_descriptor_control(sdflags=flags)
            assert conn.search(
                dn,
                "(objectClass=*)",
                ldap3.BASE,
                attributes=["nTSecurityDescriptor"],
                controls=controls,
            ), conn.result
            raw = conn.response[0]["raw_attributes"]["nTSecurityDescriptor"][0]  # it reads it
            wrote = conn.modify(
                dn, {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [raw])]}, controls=controls
            )
            assert refused(conn, wrote), (dn, flags, conn.result)


def test_an_admin_cannot_move_anything_out_of_its_ou(
    admin_seat: tuple[Tenant, ldap3.Connection], tenants: list[Tenant]
) -> None:
    me, conn = admin_seat
    other = victim(tenants, me)
    assert conn.modify(me.user_dn, {"title": [(ldap3.MODIFY_REPLACE, ["Staying"])]})
    for dn in (me.users_group, me.user_dn):
        for target in (other.ou, f"CN=Users,{BASE}", f"OU=Tenants,{BASE}"):
            moved = conn.modify_dn(dn, dn.split(",", 1)[0], new_superior=target)
            assert not moved, (dn, target)
            assert conn.result["description"] in {REFUSED, "noSuchObject"}, conn.result
    assert not conn.delete(me.user_dn)  # users leave through the events
    assert conn.result["description"] == REFUSED


def test_an_admin_resets_a_password_and_the_user_logs_on_by_upn(
    platform: SuitePlatform, admin_seat: tuple[Tenant, ldap3.Connection], tenants: list[Tenant]
) -> None:
    me, conn = admin_seat
    fresh = f"Reset-{secrets.token_hex(4)}-Pw1!"
    encoded = f'"{fresh}"'.encode("utf-16-le")
    reset = {"unicodePwd": [(ldap3.MODIFY_REPLACE, [encoded])]}
    # Nobody's but its own tenant's: not the next tenant's user, not Administrator.
    for outside in (victim(tenants, me).user_dn, f"CN=Administrator,CN=Users,{BASE}"):
        assert not conn.modify(outside, reset), outside
        assert conn.result["description"] in {REFUSED, "noSuchObject"}, conn.result
    assert conn.modify(me.user_dn, reset), conn.result
    with ldap_oracle.bind(platform, me.user_upn, fresh) as logged_on:
        assert logged_on.bound, logged_on.result
    with ldap_oracle.bind(platform, me.user_upn, "Not-The-Passw0rd!") as wrong:
        assert not wrong.bound  # the oracle can fail
    # Back, for the other tests of the module (the admin may set it again).
    old = f'"{PASSWORD}"'.encode("utf-16-le")
    assert conn.modify(me.user_dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [old])]}), conn.result


def test_an_admin_cannot_change_its_tenants_plan_or_domains(
    admin_seat: tuple[Tenant, ldap3.Connection],
) -> None:
    me, conn = admin_seat
    settings = f"CN=Tenant Settings,{me.ou}"
    entry = ldap_oracle.read(conn, settings, ["msDS-Settings", "keywords"])
    assert entry is not None  # it may read them, its reservations included
    assert "reserved:admin" in entry["keywords"], entry
    more = {"msDS-Settings": [(ldap3.MODIFY_ADD, ["max_users=100000"])]}
    assert refused(conn, conn.modify(settings, more)), conn.result
    # Nor its reservations: one dropped would leave a user its delete never releases, one
    # added would count a user it does not have.
    for change in (ldap3.MODIFY_DELETE, ldap3.MODIFY_ADD):
        value = "reserved:admin" if change == ldap3.MODIFY_DELETE else "reserved:ghost"
        assert refused(conn, conn.modify(settings, {"keywords": [(change, [value])]})), conn.result
    domains = {"uPNSuffixes": [(ldap3.MODIFY_ADD, ["elsewhere.example"])]}
    assert refused(conn, conn.modify(me.ou, domains)), conn.result


def test_a_guessed_dn_answers_by_existence_as_samba_does(
    admin_seat: tuple[Tenant, ldap3.Connection], tenants: list[Tenant]
) -> None:
    """Recorded, not closed: Samba 4.17 checks rights after it finds the object, so a write
    to another tenant's hidden object is refused (50) and one to a missing object is
    noSuchObject (32), whatever the DACL says (docs/engine.md)."""
    me, conn = admin_seat
    other = victim(tenants, me)
    note = {"description": [(ldap3.MODIFY_REPLACE, ["probe"])]}
    assert ldap_oracle.read(conn, other.user_dn, ["cn"]) is None  # hidden from it
    conn.modify(other.user_dn, note)
    assert conn.result["description"] == REFUSED
    conn.modify(f"CN=no-such-user,{other.ou}", note)
    assert conn.result["description"] == "noSuchObject"
    conn.modify(f"CN=no-such-user,OU=no-such-tenant-{me.id},OU=Tenants,{BASE}", note)
    assert conn.result["description"] == "noSuchObject"


def test_the_granted_attribute_guids_are_the_dcs_own(admin: ldap3.Connection) -> None:
    """The DACL names attributes by schemaIDGUID; the DC's schema, read here, must agree,
    and none of them may be an identity."""
    import uuid  # noqa: PLC0415

    from workers.provisioning import security  # noqa: PLC0415

    schema = f"CN=Schema,CN=Configuration,{BASE}"
    granted = {**security.USER_DETAILS, **security.GROUP_DETAILS}
    for name, guid in granted.items():
        assert admin.search(
            schema, f"(lDAPDisplayName={name})", ldap3.LEVEL, attributes=["schemaIDGUID"]
        ), name
        raw = admin.response[0]["raw_attributes"]["schemaIDGUID"][0]
        assert str(uuid.UUID(bytes_le=raw)) == guid, name
    identities = {
        "userPrincipalName",
        "servicePrincipalName",
        "sAMAccountName",
        "altSecurityIdentities",
        "msDS-AllowedToActOnBehalfOfOtherIdentity",
        "userAccountControl",
        "mail",
        "proxyAddresses",
    }
    assert identities.isdisjoint(granted)
    assert admin.search(
        f"CN=Extended-Rights,CN=Configuration,{BASE}",
        "(cn=User-Force-Change-Password)",
        ldap3.LEVEL,
        attributes=["rightsGuid"],
    )
    assert admin.response[0]["attributes"]["rightsGuid"] == [security.RESET_PASSWORD]
