"""provisioner audit: it catches a hand-broken tenant, and --fix repairs it."""

from __future__ import annotations

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
    engine.run(
        platform,
        engine.event(
            platform,
            "user.created",
            {
                "tenant": tenant,
                "username": "staff",
                "given_name": "S",
                "surname": "T",
                "password": PASSWORD,
            },
            f"{tenant}-u",
        ),
    )
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
