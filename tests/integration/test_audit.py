"""provisioner audit: it catches a hand-broken tenant, and --fix repairs it."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import ldap3
from ldap3.protocol.microsoft import security_descriptor_control
from prometheus_client.parser import text_string_to_metric_families
from winacl.dtyp.security_descriptor import SECURITY_DESCRIPTOR

from tests.support import engine, ldap_oracle
from tests.support.platform import SuitePlatform

BASE = "DC=hosting,DC=test"
PASSWORD = "Audit-Passw0rd!"


def make_tenant(platform: SuitePlatform) -> str:
    tenant = engine.create_tenant(platform, "au", PASSWORD)
    engine.create_user(platform, tenant, "staff", PASSWORD)
    return tenant


def test_the_audit_catches_drift_and_fix_repairs_it(
    platform: SuitePlatform, admin: ldap3.Connection, tmp_path: Path
) -> None:
    tenant, other = make_tenant(platform), make_tenant(platform)
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    clean = platform.provisioner("audit", "--tenant", tenant)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.strip() == "no drift"
    sddl = ldap_oracle.dacl_sddl(admin, ou)

    # By hand: inheritance back on with read for Authenticated Users, a user out of its
    # group, another tenant's user in its admins group.
    opened = SECURITY_DESCRIPTOR.from_sddl(sddl.replace("D:P(", "D:(") + "(A;;0x20094;;;S-1-5-11)")
    assert admin.modify(
        ou,
        {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [opened.to_bytes()])]},
        controls=security_descriptor_control(sdflags=0x04),
    ), admin.result
    assert admin.modify(
        f"CN=Tenant Users,{ou}", {"member": [(ldap3.MODIFY_DELETE, [f"CN=staff,{ou}"])]}
    ), admin.result
    intruder = f"CN=staff,OU={other},OU=Tenants,{BASE}"
    assert admin.modify(f"CN=Tenant Admins,{ou}", {"member": [(ldap3.MODIFY_ADD, [intruder])]}), (
        admin.result
    )

    gauge = tmp_path / "drift.prom"
    caught = platform.provisioner("audit", "--tenant", tenant, "--metrics-file", str(gauge))
    assert caught.returncode == 1
    lines = caught.stdout.splitlines()
    assert any(
        f"tenant {tenant}: dacl:" in x and "not protected" in x and "S-1-5-11" in x for x in lines
    ), lines
    assert any(f"tenant {tenant}: not_member:" in x and f"CN=staff,{ou}" in x for x in lines)
    assert any(f"tenant {tenant}: outsider:" in x and intruder in x for x in lines)
    assert lines[-1] == "3 difference(s)"
    as_json = platform.provisioner("audit", "--tenant", tenant, "--json")
    assert as_json.returncode == 1
    records = [json.loads(x) for x in as_json.stdout.splitlines()]  # every line an object
    assert sorted(r["kind"] for r in records) == ["dacl", "not_member", "outsider"]
    assert {(r["state"], r["tenant"]) for r in records} == {("drift", tenant)}
    drift = {
        s.labels["kind"]: s.value
        for family in text_string_to_metric_families(gauge.read_text())
        for s in family.samples
        if s.name == "provisioner_drift_findings"
    }
    assert (drift["dacl"], drift["not_member"], drift["outsider"], drift["platform"]) == (
        1,
        1,
        1,
        0,
    )
    assert platform.provisioner("audit", "--tenant", other).returncode == 0  # untouched

    fixed = platform.provisioner("audit", "--tenant", tenant, "--fix")
    assert fixed.returncode == 0, fixed.stdout
    assert "fixed: lock down" in fixed.stdout
    assert fixed.stdout.splitlines()[-1] == "no drift"
    assert ldap_oracle.dacl_sddl(admin, ou) == sddl
    users = ldap_oracle.read(admin, f"CN=Tenant Users,{ou}", ["member"])
    admins = ldap_oracle.read(admin, f"CN=Tenant Admins,{ou}", ["member"])
    assert users is not None
    assert f"CN=staff,{ou}" in users["member"]
    assert admins is not None
    assert intruder not in admins["member"]


def test_a_wrong_platform_is_drift_too(platform: SuitePlatform, admin: ldap3.Connection) -> None:
    ds = "CN=Directory Service,CN=Windows NT,CN=Services,CN=Configuration,DC=hosting,DC=test"
    assert admin.modify(ds, {"dSHeuristics": [(ldap3.MODIFY_REPLACE, ["000"])]})
    try:
        caught = platform.provisioner("audit")
        assert caught.returncode == 1
        assert "platform: platform: List Object Mode is off" in caught.stdout
        fixed = platform.provisioner("audit", "--fix", *platform.admin_options)
        assert fixed.returncode == 0, fixed.stdout
    finally:
        platform.bootstrap()
    assert ldap_oracle.read(admin, ds, ["dSHeuristics"]) == {"dSHeuristics": ["001"]}


def _write_dacl(admin: ldap3.Connection, dn: str, sd: SECURITY_DESCRIPTOR) -> None:
    assert admin.modify(
        dn,
        {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [sd.to_bytes()])]},
        controls=security_descriptor_control(sdflags=0x04),
    ), admin.result


def test_the_audit_reports_identities_and_foreign_aces_and_fix_removes_them(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant, other = make_tenant(platform), make_tenant(platform)
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    staff = f"CN=staff,{ou}"
    assert platform.provisioner("audit", "--tenant", tenant).stdout.strip() == "no drift"
    # Planted by hand with Administrator's rights: a UPN in the other tenant's domain, an
    # SPN naming its host, full control of the user for the other tenant's admins, and a
    # container the design never makes.
    squatted = f"ceo@{other}.example"
    assert admin.modify(staff, {"userPrincipalName": [(ldap3.MODIFY_REPLACE, [squatted])]})
    spn = f"HTTP/www.{other}.example"
    assert admin.modify(staff, {"servicePrincipalName": [(ldap3.MODIFY_ADD, [spn])]})
    foreign = ldap_oracle.sid(admin, f"CN=Tenant Admins,OU={other},OU=Tenants,{BASE}")
    planted = SECURITY_DESCRIPTOR.from_sddl(
        ldap_oracle.dacl_sddl(admin, staff) + f"(A;;0xf01ff;;;{foreign})"
    )
    _write_dacl(admin, staff, planted)
    assert admin.add(f"CN=stash,{ou}", ["container"], {}), admin.result
    rogue = f"CN=rogue,{ou}"  # a user made past the events, with no job tag
    person = ["top", "person", "organizationalPerson", "user"]
    rogue_upn = f"rogue@{tenant}.example"
    attrs = {"sAMAccountName": f"r{secrets.token_hex(5)}", "userPrincipalName": rogue_upn}
    assert admin.add(rogue, person, attrs), admin.result
    # And a default ACE taken off the users group: Authenticated Users' read.
    group = f"CN=Tenant Users,{ou}"
    default_read = "(A;;0x20094;;;S-1-5-11)"
    assert default_read in ldap_oracle.dacl_sddl(admin, group)
    stripped = ldap_oracle.dacl_sddl(admin, group).replace(default_read, "")
    _write_dacl(admin, group, SECURITY_DESCRIPTOR.from_sddl(stripped))

    caught = platform.provisioner("audit", "--tenant", tenant)
    assert caught.returncode == 1
    out = caught.stdout
    assert f"upn_outside_domains: {staff} has the UPN {squatted}" in out
    assert f"spn: {staff} has the SPN(s) {spn}" in out
    assert f"foreign_ace: {staff}: 1 ACE(s) beyond its class's default; {foreign} 0xf01ff" in out
    assert f"unexpected_object: CN=stash,{ou} is a container" in out
    assert f"foreign_user: {rogue} was not made by the fleet" in out
    assert f"foreign_ace: {group}: 1 of its class's default ACE(s) missing" in out

    fixed = platform.provisioner("audit", "--tenant", tenant, "--fix")
    assert fixed.returncode == 1, fixed.stdout  # the container stays: --fix deletes nothing
    after = ldap_oracle.read(admin, staff, ["userPrincipalName", "servicePrincipalName"])
    assert after is not None
    assert after["userPrincipalName"] == [f"staff@{tenant}.example"]
    assert after.get("servicePrincipalName", []) == []
    assert foreign not in ldap_oracle.dacl_sddl(admin, staff)
    assert default_read in ldap_oracle.dacl_sddl(admin, group)
    assert ldap_oracle.read(admin, f"CN=stash,{ou}", ["cn"]) is not None
    assert ldap_oracle.read(admin, rogue, ["cn"]) is not None  # --fix never deletes a user
    still = [line for line in fixed.stdout.splitlines() if line.startswith("still:")]
    assert sorted(still) == sorted(
        [
            f"still: tenant {tenant}: unexpected_object: CN=stash,{ou} is a container",
            f"still: tenant {tenant}: foreign_user: {rogue} was not made by the fleet",
        ]
    )
    assert admin.delete(f"CN=stash,{ou}"), admin.result
    assert admin.delete(rogue), admin.result
    assert platform.provisioner("audit", "--tenant", tenant).stdout.strip() == "no drift"


def _old_design(admin: ldap3.Connection, tenant: str) -> SECURITY_DESCRIPTOR:
    """The tenant OU's DACL as the fleet wrote it before tenant admins were scoped: full
    control of users and groups below for the admins group (written out here, not taken
    from the code under test)."""
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    domain = ldap_oracle.sid(admin, BASE)
    fleet = ldap_oracle.sid(admin, f"CN=svc-provisioner,CN=Users,{BASE}")
    users = ldap_oracle.sid(admin, f"CN=Tenant Users,{ou}")
    admins = ldap_oracle.sid(admin, f"CN=Tenant Admins,{ou}")
    user, group = "bf967aba-0de6-11d0-a285-00aa003049e2", "bf967a9c-0de6-11d0-a285-00aa003049e2"
    return SECURITY_DESCRIPTOR.from_sddl(
        f"D:P(A;CI;0xf01ff;;;S-1-5-18)(A;CI;0xf01ff;;;{domain}-512)(A;CI;0xf01ff;;;{fleet})"
        f"(A;CI;0x20094;;;{users})(A;CI;0x20094;;;{admins})"
        f"(OA;;0x3;{user};;{admins})(OA;;0x3;{group};;{admins})"
        f"(OA;CIIO;0xf01ff;;{user};{admins})(OA;CIIO;0xf01ff;;{group};{admins})"
    )


def _admin_sets_a_foreign_upn(platform: SuitePlatform, tenant: str) -> bool:
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    with ldap_oracle.bind(platform, f"admin@{tenant}.example", PASSWORD) as conn:
        assert conn.bound, conn.result
        assert conn.modify(f"CN=staff,{ou}", {"title": [(ldap3.MODIFY_REPLACE, ["Staff"])]})
        squat = {"userPrincipalName": [(ldap3.MODIFY_REPLACE, ["ceo@elsewhere.example"])]}
        done = bool(conn.modify(f"CN=staff,{ou}", squat))
        if done:  # undone at once: the old design let it through
            back = {"userPrincipalName": [(ldap3.MODIFY_REPLACE, [f"staff@{tenant}.example"])]}
            assert conn.modify(f"CN=staff,{ou}", back), conn.result
        return done


def test_a_tenant_made_the_old_way_is_migrated_by_the_bootstrap_and_by_audit_fix(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    by_bootstrap, by_audit = make_tenant(platform), make_tenant(platform)
    for tenant in (by_bootstrap, by_audit):
        _write_dacl(admin, f"OU={tenant},OU=Tenants,{BASE}", _old_design(admin, tenant))
        assert _admin_sets_a_foreign_upn(platform, tenant)  # the old hole, open
    migrated = platform.bootstrap()
    assert migrated.returncode == 0, migrated.stderr
    ou = f"OU={by_bootstrap},OU=Tenants,{BASE}"
    assert f"changed: migrated the DACL of {ou} to the current design" in migrated.stdout
    assert not _admin_sets_a_foreign_upn(platform, by_bootstrap)
    # The other one the bootstrap migrated too; open it again for the audit to converge.
    _write_dacl(admin, f"OU={by_audit},OU=Tenants,{BASE}", _old_design(admin, by_audit))
    drift = platform.provisioner("audit", "--tenant", by_audit)
    assert drift.returncode == 1
    assert f"tenant {by_audit}: dacl:" in drift.stdout
    fixed = platform.provisioner("audit", "--tenant", by_audit, "--fix")
    assert fixed.returncode == 0, fixed.stdout
    assert not _admin_sets_a_foreign_upn(platform, by_audit)
    assert platform.provisioner("audit", "--tenant", by_audit).stdout.strip() == "no drift"


def test_a_tenants_pso_pointed_at_domain_admins_is_reported_and_pointed_back(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant = f"ps-{secrets.token_hex(3)}"
    data = engine.tenant_data(tenant, admin_password=PASSWORD)
    data["plan"] = {"max_users": 5, "password_policy": {"min_length": 10}}
    engine.run(platform, engine.event(platform, "tenant.created", data, f"{tenant}-created"))
    pso = f"CN={tenant}-PSO,CN=Password Settings Container,CN=System,{BASE}"
    users = f"CN=Tenant Users,OU={tenant},OU=Tenants,{BASE}"
    assert ldap_oracle.read(admin, pso, ["msDS-PSOAppliesTo"]) == {"msDS-PSOAppliesTo": [users]}
    assert platform.provisioner("audit", "--tenant", tenant).stdout.strip() == "no drift"
    domain_admins = f"CN=Domain Admins,CN=Users,{BASE}"
    assert admin.modify(pso, {"msDS-PSOAppliesTo": [(ldap3.MODIFY_ADD, [domain_admins])]})
    caught = platform.provisioner("audit", "--tenant", tenant)
    assert caught.returncode == 1
    assert f"pso_applies_elsewhere: {pso} applies to " in caught.stdout
    assert domain_admins in caught.stdout
    fixed = platform.provisioner("audit", "--tenant", tenant, "--fix")
    assert fixed.returncode == 0, fixed.stdout
    assert ldap_oracle.read(admin, pso, ["msDS-PSOAppliesTo"]) == {"msDS-PSOAppliesTo": [users]}


def test_a_pso_made_before_the_delegation_is_granted_to_the_fleet_by_the_bootstrap(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    """Before the fleet was delegated, it made PSOs as a Domain Admin: their owner is Domain
    Admins and no ACE names the fleet.  The bootstrap grants each tenant's PSO to it, and
    only those (an administrator's own PSO stays out of reach: test_least_privilege)."""
    tenant = f"og-{secrets.token_hex(3)}"
    data = engine.tenant_data(tenant, admin_password=PASSWORD)
    data["plan"] = {"max_users": 5, "password_policy": {"min_length": 10}}
    engine.run(platform, engine.event(platform, "tenant.created", data, f"{tenant}-created"))
    pso = f"CN={tenant}-PSO,CN=Password Settings Container,CN=System,{BASE}"
    domain = ldap_oracle.sid(admin, BASE)
    # As it was: owned by Domain Admins, its DACL the administrators' alone.
    old = SECURITY_DESCRIPTOR.from_sddl(
        f"O:{domain}-512D:P(A;;0xf01ff;;;{domain}-512)(A;;0xf01ff;;;S-1-5-18)"
    )
    assert admin.modify(
        pso,
        {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [old.to_bytes()])]},
        controls=security_descriptor_control(sdflags=0x05),
    ), admin.result
    env = platform.settings_env
    change = {"msDS-MinimumPasswordLength": [(ldap3.MODIFY_REPLACE, ["11"])]}
    with ldap_oracle.bind(
        platform, env["PROVISIONER_LDAP_BIND_DN"], env["PROVISIONER_LDAP_BIND_PASSWORD"]
    ) as fleet:
        assert fleet.bound, fleet.result
        assert ldap_oracle.read(fleet, f"OU={tenant},OU=Tenants,{BASE}", ["ou"]) is not None
        assert not fleet.modify(pso, change)  # the old PSO: out of the fleet's reach
        assert fleet.result["description"] == "insufficientAccessRights"
        granted = platform.bootstrap()
        assert granted.returncode == 0, granted.stderr
        assert f"changed: delegated 1 right(s) on {pso}" in granted.stdout
        assert fleet.modify(pso, change), fleet.result
    again = platform.bootstrap()
    assert f"on {pso}" not in again.stdout  # once is enough
