"""The fleet's own records are the fleet's alone: a tenant admin can neither read nor
write an idempotency record or a fence, not even its own tenant's.

They say which tenants exist and what was done for them (a fence's ``keywords`` name its
tenant; an idempotency record holds the intent's key and its details), and they steer the
fleet (a forged fence makes a tenant wait forever; a forged record makes an intent a
"duplicate" that is never applied).  Each refusal stands beside a positive control on the
same connection: the tenant admin reading its own OU.  Read back with plain ldap3 by the
fleet's own account and by Administrator.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator

import ldap3
import pytest
from ldap3.protocol.microsoft import security_descriptor_control
from winacl.dtyp.security_descriptor import SECURITY_DESCRIPTOR

from tests.support import engine, ldap_oracle
from tests.support.platform import SuitePlatform
from workers.delivery import fences, idempotency

BASE = "DC=hosting,DC=test"
PROVISIONER = f"CN=Provisioner,CN=System,{BASE}"
IDEMPOTENCY = f"CN=Idempotency,{PROVISIONER}"
FENCES = f"CN=Fences,{PROVISIONER}"
PASSWORD = "Locked-Rec0rds-Passw0rd!"
REFUSED = {"insufficientAccessRights", "noSuchObject"}


def record_dn(key: str) -> str:
    """Written here from the documented naming (sha256 of the key), not from the code."""
    return f"CN={hashlib.sha256(key.encode()).hexdigest()[:48]},{IDEMPOTENCY}"


@pytest.fixture(scope="module")
def tenant(platform: SuitePlatform) -> str:
    """A tenant made by the engine, with the record of its tenant.created written by the
    fleet's ledger as a worker writes it."""
    tenant = f"lr-{secrets.token_hex(3)}"
    created = engine.event(
        platform,
        "tenant.created",
        engine.tenant_data(tenant, admin_password=PASSWORD),
        f"{tenant}-created",
    )
    details = engine.run(platform, created)
    with engine.connected(platform) as fleet:
        idempotency.Ledger(fleet, BASE).record(created, details)
    return tenant


@pytest.fixture(scope="module")
def mark(platform: SuitePlatform, tenant: str) -> str:
    """A fence for the tenant, staked by the fleet as a job on two DCs would."""
    dn = fences.mark_dn(BASE, fences.Kind.FENCE, tenant, "dc1.test", "dc2.test")
    with engine.connected(platform) as fleet:
        fences.stake(
            fleet,
            dn,
            tenant=tenant,
            key=f"{tenant}-job",
            origin="dc1.test",
            holder="dc2.test",
            origin_invocation="0" * 32,
        )
    return dn


@pytest.fixture
def tenant_admin(platform: SuitePlatform, tenant: str) -> Iterator[ldap3.Connection]:
    with ldap_oracle.bind(platform, f"admin@{tenant}.example", PASSWORD) as connection:
        assert connection.bound, connection.result
        yield connection


@pytest.fixture
def fleet(platform: SuitePlatform) -> Iterator[ldap3.Connection]:
    with ldap_oracle.as_fleet(platform) as connection:
        yield connection


def entries(connection: ldap3.Connection, base: str, scope: str = ldap3.SUBTREE) -> list[str]:
    connection.search(base, "(objectClass=*)", scope, attributes=["*"])
    return [r["dn"].lower() for r in connection.response or [] if r["type"] == "searchResEntry"]


def sd_bytes(sddl: str) -> bytes:
    return bytes(SECURITY_DESCRIPTOR.from_sddl(sddl).to_bytes())


def own_ou_control(connection: ldap3.Connection, tenant: str) -> None:
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    assert f"cn=admin,{ou}".lower() in entries(connection, ou), "positive control"


@pytest.mark.parametrize("container", [FENCES, IDEMPOTENCY], ids=["fences", "idempotency"])
def test_a_tenant_admin_reads_no_record_of_the_fleet(
    tenant_admin: ldap3.Connection,
    fleet: ldap3.Connection,
    tenant: str,
    mark: str,
    container: str,
) -> None:
    own = {mark.lower(), record_dn(f"{tenant}-created").lower()}
    held = set(entries(fleet, container, ldap3.LEVEL))
    assert own & held, "the fleet's own connection sees the tenant's record (positive control)"

    own_ou_control(tenant_admin, tenant)
    tenant_admin.search(PROVISIONER, "(objectClass=*)", ldap3.SUBTREE, attributes=["*"])
    seen = {
        r["dn"].lower(): {k: v for k, v in r["raw_attributes"].items() if v}
        for r in tenant_admin.response or []
        if r["type"] == "searchResEntry"
    }
    # CN=System lists its children to every user, so the container's name shows; not one
    # of its attributes, and nothing below it.
    assert set(seen) <= {PROVISIONER.lower()}, seen
    assert not any(seen.values()), seen
    for dn in own & held:
        assert entries(tenant_admin, dn, ldap3.BASE) == [], dn
    tenant_admin.search(container, f"(keywords=*{tenant}*)", ldap3.SUBTREE, attributes=["*"])
    assert not [r for r in tenant_admin.response or [] if r["type"] == "searchResEntry"]


def test_a_tenant_admin_cannot_release_or_forge_a_fence(
    tenant_admin: ldap3.Connection,
    admin: ldap3.Connection,
    tenant: str,
    mark: str,
) -> None:
    own_ou_control(tenant_admin, tenant)
    pending = f"pending:{hashlib.sha256(f'{tenant}-job'.encode()).hexdigest()[:48]}"
    tenant_admin.modify(mark, {"keywords": [(ldap3.MODIFY_DELETE, [pending])]})
    assert tenant_admin.result["description"] in REFUSED, tenant_admin.result
    forged = f"CN=fence-forged-{secrets.token_hex(4)},{FENCES}"
    tenant_admin.add(forged, ["msDS-App-Configuration"], {"keywords": [f"tenant:{tenant}"]})
    assert tenant_admin.result["description"] in REFUSED, tenant_admin.result

    assert admin.search(mark, "(objectClass=*)", ldap3.BASE, attributes=["keywords"])
    assert pending in admin.response[0]["attributes"]["keywords"], "the fence is intact"
    assert entries(admin, forged, ldap3.BASE) == [], "no forged fence"


def test_a_tenant_admin_cannot_forge_or_erase_an_idempotency_record(
    tenant_admin: ldap3.Connection, admin: ldap3.Connection, tenant: str
) -> None:
    own_ou_control(tenant_admin, tenant)
    # A record for an intent not applied yet would make it a "duplicate" never applied.
    forged = record_dn(f"{tenant}-user-next")
    tenant_admin.add(forged, ["msDS-App-Configuration"], {"keywords": ["type:user.created"]})
    assert tenant_admin.result["description"] in REFUSED, tenant_admin.result
    existing = record_dn(f"{tenant}-created")
    tenant_admin.delete(existing)
    assert tenant_admin.result["description"] in REFUSED, tenant_admin.result
    tenant_admin.modify(existing, {"keywords": [(ldap3.MODIFY_REPLACE, ["type:forged"])]})
    assert tenant_admin.result["description"] in REFUSED, tenant_admin.result

    assert entries(admin, forged, ldap3.BASE) == [], "no forged record"
    assert admin.search(existing, "(objectClass=*)", ldap3.BASE, attributes=["keywords"])
    assert "type:tenant.created" in admin.response[0]["attributes"]["keywords"]


def test_bootstrap_locks_what_an_earlier_fleet_left_readable(
    platform: SuitePlatform,
    fleet: ldap3.Connection,
    admin: ldap3.Connection,
    tenant_admin: ldap3.Connection,
    tenant: str,
) -> None:
    """A fence written as the fleet wrote them before (the class's default descriptor), and
    CN=Fences opened the same way: readable by the tenant admin until the bootstrap."""
    loose = f"CN=stamp-loose-{secrets.token_hex(4)},{FENCES}"
    assert fleet.add(loose, ["msDS-App-Configuration"], {"keywords": [f"tenant:{tenant}"]})
    opened = "D:AI(A;;0xf01ff;;;S-1-5-18)(A;;0x20094;;;S-1-5-11)"
    assert admin.modify(
        FENCES,
        {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [sd_bytes(opened)])]},
        controls=security_descriptor_control(sdflags=0x04),
    ), admin.result
    try:
        assert entries(tenant_admin, loose, ldap3.BASE) == [loose.lower()], "the hole, first"
        check = platform.provisioner("directory", "check")
        assert check.returncode == 1
        assert f"{FENCES} is not locked down" in check.stderr
    finally:
        fixed = platform.bootstrap()
    assert fixed.returncode == 0, fixed.stderr
    assert f"locked down {FENCES}" in fixed.stdout
    assert f"locked down 1 object(s) in {FENCES}" in fixed.stdout
    assert platform.provisioner("directory", "check").returncode == 0

    own_ou_control(tenant_admin, tenant)
    assert entries(tenant_admin, loose, ldap3.BASE) == []
    assert entries(fleet, loose, ldap3.BASE) == [loose.lower()], "the fleet still reads it"
    for dn in (FENCES, loose):
        sddl = ldap_oracle.dacl_sddl(admin, dn)
        assert "S-1-5-11" not in sddl, sddl
        assert ";;;" not in sddl.split("(A;CIID", 1)[0], f"no ACE of its own: {sddl}"
